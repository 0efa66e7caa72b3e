# Command-line tests: a program's exit status AND its output, through the driver expect.cmake.
# (ctest's PASS_REGULAR_EXPRESSION alone ignores the exit status: a program that prints the
# expected error and then exits 0 would pass. No test under tests/ relies on it.)
#
# recdistill_add_cli_test(NAME name RC status
#                         [REGEX re...] [NOT_REGEX re...]
#                         [WORKING_DIRECTORY dir] [ENVIRONMENT VAR=value...]
#                         COMMAND program args...)
#   Passes only when COMMAND exits with RC and its output (stdout + stderr) matches every REGEX
#   and none of NOT_REGEX. COMMAND comes last, so its arguments may be anything but the keywords
#   above. Inside COMMAND name the app by $<TARGET_FILE:recdistill_app>, not by its target name
#   (add_test resolves a target name only as the first word of its own COMMAND). A regex must
#   not contain ';' (it would split the list; write '.' for it) nor "^^" (the driver's separator).
set(RECDISTILL_EXPECT_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/expect.cmake)

function(recdistill_add_cli_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;RC;WORKING_DIRECTORY" "REGEX;NOT_REGEX;ENVIRONMENT;COMMAND")
  if(NOT arg_NAME OR "${arg_RC}" STREQUAL "" OR NOT arg_COMMAND OR arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "recdistill_add_cli_test: needs NAME, RC and COMMAND (unparsed: ${arg_UNPARSED_ARGUMENTS})")
  endif()
  foreach(v COMMAND REGEX NOT_REGEX)
    string(REPLACE ";" "^^" ${v} "${arg_${v}}")
  endforeach()
  add_test(NAME ${arg_NAME}
           COMMAND ${CMAKE_COMMAND} "-DCMD=${COMMAND}" "-DRC=${arg_RC}" "-DREGEX=${REGEX}"
                   "-DNOT_REGEX=${NOT_REGEX}" -P ${RECDISTILL_EXPECT_SCRIPT})
  if(arg_WORKING_DIRECTORY)
    set_tests_properties(${arg_NAME} PROPERTIES WORKING_DIRECTORY ${arg_WORKING_DIRECTORY})
  endif()
  if(arg_ENVIRONMENT)
    set_tests_properties(${arg_NAME} PROPERTIES ENVIRONMENT "${arg_ENVIRONMENT}")
  endif()
endfunction()
