# ctest driver: runs CMD (a list), requires exit status RC and output (stdout + stderr) matching
# every regular expression of REGEX (a list), and none of NOT_REGEX. Lists are separated by
# "^^" (a ';' would not survive add_test). Tests call it through recdistill_add_cli_test
# (tests/cli.cmake), which checks the exit status that PASS_REGULAR_EXPRESSION would ignore.
foreach(v CMD REGEX NOT_REGEX)
  string(REPLACE "^^" ";" ${v} "${${v}}")
endforeach()
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
message("${all}")
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "exit status ${rc}, expected ${RC}")
endif()
foreach(re IN LISTS REGEX)
  if(NOT all MATCHES "${re}")
    message(FATAL_ERROR "output does not match: ${re}")
  endif()
endforeach()
foreach(re IN LISTS NOT_REGEX)
  if(all MATCHES "${re}")
    message(FATAL_ERROR "output matches what it must not: ${re}")
  endif()
endforeach()
message("expect ok")
