# Installs the build tree into a scratch prefix, extracts the README's C++
# example into a fresh outside project that uses find_package(seemore), builds
# it against the installed package only, and runs it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/consumer)

execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed")
endif()

file(READ ${SOURCE_DIR}/README.md readme)
string(FIND "${readme}" "```cpp\n" start)
if(start EQUAL -1)
  message(FATAL_ERROR "README.md has no ```cpp example")
endif()
math(EXPR start "${start} + 7")
string(SUBSTRING "${readme}" ${start} -1 rest)
string(FIND "${rest}" "```" stop)
string(SUBSTRING "${rest}" 0 ${stop} example)
file(READ ${SOURCE_DIR}/examples/tiny_train.cpp example_file)
if(NOT example STREQUAL example_file)
  message(FATAL_ERROR "README.md's C++ example differs from examples/tiny_train.cpp: keep them the same")
endif()
file(WRITE ${WORK_DIR}/consumer/main.cpp "${example}")
# A user's build has no -march=native: the CPU kernels must still run in the
# processor's best form, chosen at run time (backend/cpu/isa.hpp).
file(WRITE ${WORK_DIR}/consumer/forms.cpp [=[
#include <seemore/backend/cpu/gemm.hpp>
#include <seemore/backend/cpu/isa.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
int main() {
  namespace cpu = seemore::backend::cpu;
#if defined(__AVX2__)
  const char* flags = "with AVX2 in the compiler's flags";
#else
  const char* flags = "without AVX2 in the compiler's flags";
#endif
  const std::string lib = cpu::gemm_library();
  std::printf("forms: built %s; processor's best form %s, running %s; float GEMMs on %s\n", flags,
              cpu::isa_name(cpu::supported_isa()), cpu::isa_name(cpu::active_isa()), lib.c_str());
  if (std::getenv("SEEMORE_CPU") || std::getenv("SEEMORE_BLAS")) return 0;  // a cap or a BLAS was asked for
  if (cpu::active_isa() != cpu::supported_isa()) return 1;
  if (cpu::supported_isa() != cpu::Isa::scalar && lib != std::string("seemore ") + cpu::isa_name(cpu::supported_isa()))
    return 2;
  return 0;
}
]=])
file(WRITE ${WORK_DIR}/consumer/CMakeLists.txt [=[
cmake_minimum_required(VERSION 3.22)
project(seemore_consumer CXX)
find_package(seemore CONFIG REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE seemore::seemore)
add_executable(forms forms.cpp)
target_link_libraries(forms PRIVATE seemore::seemore)
]=])

set(launcher)
if(CXX_COMPILER_LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_COMPILER_LAUNCHER})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${WORK_DIR}/consumer -B ${WORK_DIR}/build
                  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix ${launcher}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the outside project failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the README example against the installed package failed")
endif()
execute_process(COMMAND ${WORK_DIR}/build/forms RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc)
  message(FATAL_ERROR "built against the installed package, the CPU kernels do not run in the processor's best form (${rc})")
endif()
execute_process(COMMAND ${WORK_DIR}/build/app RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc)
  message(FATAL_ERROR "the README example exited with ${rc}")
endif()
