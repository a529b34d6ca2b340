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
# seemore::image alone: a PNG written and decoded back.
file(WRITE ${WORK_DIR}/consumer/image.cpp [=[
#include <seemore/data/image.hpp>
#include <seemore/io/png_write.hpp>
#include <cstdio>
int main() {
  std::vector<uint8_t> rgb(4 * 3 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(i * 7);
  auto img = seemore::data::decode_image(seemore::io::encode_png(rgb.data(), 4, 3), "memory");
  std::printf("image: decoded a %lldx%lld PNG\n", static_cast<long long>(img.width), static_cast<long long>(img.height));
  return img.width == 4 && img.height == 3 && img.rgb == rgb ? 0 : 1;
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
add_executable(image image.cpp)
target_link_libraries(image PRIVATE seemore::image)
# The same README program against the compiled helper: its instantiations come from the library.
if(TARGET seemore::precompiled)
  add_executable(app_precompiled main.cpp)
  target_link_libraries(app_precompiled PRIVATE seemore::precompiled)
endif()
]=])
# seemore::core alone, from a project that asks for that component only: the
# package must not require (or define) the image targets then.
file(MAKE_DIRECTORY ${WORK_DIR}/core_consumer)
file(WRITE ${WORK_DIR}/core_consumer/CMakeLists.txt [=[
cmake_minimum_required(VERSION 3.22)
project(seemore_core_consumer CXX)
find_package(seemore CONFIG REQUIRED COMPONENTS core)
if(TARGET seemore::image OR TARGET seemore::seemore)
  message(FATAL_ERROR "find_package(seemore COMPONENTS core) loaded the image targets too")
endif()
add_executable(core_app core.cpp)
target_link_libraries(core_app PRIVATE seemore::core)
]=])
file(READ ${SOURCE_DIR}/tests/install/core_app.cpp core_app)
file(WRITE ${WORK_DIR}/core_consumer/core.cpp "${core_app}")

set(launcher)
if(CXX_COMPILER_LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_COMPILER_LAUNCHER})
endif()
# configure_and_build(SOURCE BUILD WHAT): the outside project at SOURCE, against the installed prefix.
function(configure_and_build source build what)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${source} -B ${build}
                    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix ${launcher}
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "configuring ${what} failed")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${build} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "building ${what} against the installed package failed")
  endif()
endfunction()
# run_program(PROGRAM FAILURE): runs it in its folder, prints its output, fails with FAILURE (and the code).
function(run_program program failure)
  get_filename_component(dir ${program} DIRECTORY)
  execute_process(COMMAND ${program} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err WORKING_DIRECTORY ${dir})
  message("${out}${err}")
  if(rc)
    message(FATAL_ERROR "${failure} (${rc})")
  endif()
endfunction()

configure_and_build(${WORK_DIR}/consumer ${WORK_DIR}/build "the README example, forms.cpp and image.cpp")
configure_and_build(${WORK_DIR}/core_consumer ${WORK_DIR}/core_build "the seemore::core program")
run_program(${WORK_DIR}/build/image "the seemore::image program failed")
run_program(${WORK_DIR}/core_build/core_app "the seemore::core program failed")
run_program(${WORK_DIR}/build/forms
            "built against the installed package, the CPU kernels do not run in the processor's best form")
run_program(${WORK_DIR}/build/app "the README example failed")
if(NOT EXISTS ${WORK_DIR}/build/app_precompiled)
  message("seemore::precompiled not built (SEEMORE_BUILD_PRECOMPILED=OFF): not tested")
  return()
endif()
run_program(${WORK_DIR}/build/app_precompiled "the README example linked to seemore::precompiled failed")
# Linked to seemore::precompiled, the program's own object holds far less code:
# the ops, Adam and autograd were not instantiated in it.
file(GLOB_RECURSE obj_header_only ${WORK_DIR}/build/CMakeFiles/app.dir/main.cpp.o)
file(GLOB_RECURSE obj_precompiled ${WORK_DIR}/build/CMakeFiles/app_precompiled.dir/main.cpp.o)
file(SIZE ${obj_header_only} size_header_only)
file(SIZE ${obj_precompiled} size_precompiled)
message("main.cpp.o: ${size_header_only} bytes header-only, ${size_precompiled} bytes with seemore::precompiled")
math(EXPR doubled "2 * ${size_precompiled}")
if(NOT doubled LESS size_header_only)
  message(FATAL_ERROR "seemore::precompiled did not take the instantiations out of the program's object")
endif()
