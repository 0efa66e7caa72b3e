# Runs the compiler on a source that must not compile and checks the diagnostic.
#   cmake -DCXX=... -DSOURCE=... -DINCLUDES="a;b" -DEXPECT="regex;regex" -P run.cmake
# Passes only when the compiler exits non-zero AND every EXPECT regex matches its output.
set(args -std=c++20 -fsyntax-only)
foreach(dir IN LISTS INCLUDES)
  list(APPEND args "-I${dir}")
endforeach()
execute_process(COMMAND ${CXX} ${args} ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must fail to compile")
endif()
foreach(re IN LISTS EXPECT)
  if(NOT all MATCHES "${re}")
    string(SUBSTRING "${all}" 0 3000 head)
    message(FATAL_ERROR "the compiler's message does not match '${re}':\n${head}")
  endif()
endforeach()
message(STATUS "failed to compile as expected, with the expected message")
