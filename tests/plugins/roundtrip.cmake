# ctest driver: `recdistill train` a tiny SASRec, then `evaluate` its run folder (the test
# metrics must equal the run's results.json) and `recommend` for a user (k rows, none of the
# user's own items).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${APP} train --config tests/plugins/tiny.yaml --output ${WORK_DIR}/runs
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "train failed (${r}): ${out}${err}")
endif()
file(GLOB run LIST_DIRECTORIES true ${WORK_DIR}/runs/run-*)
list(LENGTH run n)
if(NOT n EQUAL 1 OR NOT EXISTS ${run}/model.weights OR NOT EXISTS ${run}/config.yaml)
  message(FATAL_ERROR "expected one run folder with model.weights and config.yaml, found '${run}'")
endif()
file(READ ${run}/results.json results)
string(JSON test_ndcg GET "${results}" test "NDCG@10")
string(JSON test_hr GET "${results}" test "HR@5")

execute_process(COMMAND ${APP} evaluate --model-path ${run} WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "evaluate failed (${r}): ${out}${err}")
endif()
# The last "json:" line is the test set's.
string(REGEX MATCHALL "json: [^\n]*" lines "${out}")
list(GET lines -1 test_line)
string(SUBSTRING "${test_line}" 6 -1 test_json)
string(JSON ev_ndcg GET "${test_json}" "NDCG@10")
string(JSON ev_hr GET "${test_json}" "HR@5")
if(NOT ev_ndcg STREQUAL test_ndcg OR NOT ev_hr STREQUAL test_hr)
  message(FATAL_ERROR "evaluate of the saved weights gives NDCG@10 ${ev_ndcg}, HR@5 ${ev_hr}; "
                      "the run reported ${test_ndcg}, ${test_hr}")
endif()

execute_process(COMMAND ${APP} recommend --model-path ${run} --users u1,u7 --k 4
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "recommend failed (${r}): ${out}${err}")
endif()
string(REGEX MATCHALL "u1\t[0-9]+\ti[0-9]+" u1_rows "${out}")
string(REGEX MATCHALL "u7\t[0-9]+\ti[0-9]+" u7_rows "${out}")
list(LENGTH u1_rows n1)
list(LENGTH u7_rows n7)
if(NOT n1 EQUAL 4 OR NOT n7 EQUAL 4)
  message(FATAL_ERROR "expected 4 recommendations each for u1 and u7:\n${out}")
endif()
file(STRINGS ${SOURCE_DIR}/tests/plugins/tiny.inter inter REGEX "^u1\t")
foreach(row IN LISTS u1_rows)
  string(REGEX REPLACE ".*\t" "" item "${row}")
  foreach(line IN LISTS inter)
    if(line MATCHES "^u1\t${item}\t")
      message(FATAL_ERROR "recommended ${item} to u1, who already has it")
    endif()
  endforeach()
endforeach()

execute_process(COMMAND ${APP} recommend --model-path ${run} --users nobody WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r EQUAL 1 OR NOT err MATCHES "user 'nobody' is not in tests/plugins/tiny.inter")
  message(FATAL_ERROR "an unknown user must be an error naming it (${r}): ${err}")
endif()
message("roundtrip ok")
