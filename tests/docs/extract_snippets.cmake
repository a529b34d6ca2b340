# seemore_extract_snippets(MARKDOWN OUT): writes OUT, one C++ program made of
# every ```cpp block of MARKDOWN. Each block's #include lines go to the top;
# the rest into `namespace snippet_N { ... }`; main() calls every
# `void example_...()` a block defines, in order, and fails with the block's
# number and the exception's message if one throws.
function(seemore_extract_snippets markdown out)
  file(READ ${markdown} text)
  set(includes "")
  set(bodies "")
  set(calls "")
  set(n 0)
  while(TRUE)
    string(FIND "${text}" "```cpp\n" start)
    if(start EQUAL -1)
      break()
    endif()
    math(EXPR start "${start} + 7")
    string(SUBSTRING "${text}" ${start} -1 text)
    string(FIND "${text}" "```" stop)
    if(stop EQUAL -1)
      message(FATAL_ERROR "${markdown}: a ```cpp block is not closed")
    endif()
    string(SUBSTRING "${text}" 0 ${stop} block)
    string(SUBSTRING "${text}" ${stop} -1 text)
    math(EXPR n "${n} + 1")
    string(REGEX MATCHALL "#include <[^>\n]+>" incs "${block}")
    foreach(i IN LISTS incs)
      string(APPEND includes "${i}\n")
    endforeach()
    string(REGEX REPLACE "#include <[^>\n]+>\n" "" body "${block}")
    string(APPEND bodies "namespace snippet_${n} {  // docs/api.md, block ${n}\n${body}}  // namespace snippet_${n}\n\n")
    string(REGEX MATCHALL "\nvoid example_[A-Za-z0-9_]+\\(\\)" fns "\n${body}")
    foreach(f IN LISTS fns)
      string(REGEX REPLACE "\nvoid (example_[A-Za-z0-9_]+)\\(\\)" "\\1" name "${f}")
      string(APPEND calls "    block = ${n};\n    std::printf(\"docs/api.md block %d: ${name}\\n\", block);\n    snippet_${n}::${name}();\n    ++ran;\n")
    endforeach()
  endwhile()
  if(n EQUAL 0)
    message(FATAL_ERROR "${markdown} has no ```cpp block")
  endif()
  file(CONFIGURE OUTPUT ${out} CONTENT "// Generated from ${markdown} by tests/docs/extract_snippets.cmake: do not edit.
${includes}#include <cstdio>
#include <exception>

${bodies}int main() {
  int block = 0, ran = 0;
  try {
${calls}  } catch (const std::exception& e) {
    std::fprintf(stderr, \"docs/api.md block %d threw: %s\\n\", block, e.what());
    return 1;
  }
  std::printf(\"ran %d examples from ${n} blocks of docs/api.md\\n\", ran);
  return ran > 0 ? 0 : 1;
}
" @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${markdown})
endfunction()
