# ctest driver: `recdistill train` a tiny SASRec, then `evaluate` its run folder (the test
# metrics must equal the run's results.json), `recommend` for a user (k rows, none of the
# user's own items), and `train --resume` a shorter run to the same result.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${APP} train --config tests/plugins/tiny.yaml --output ${WORK_DIR}/runs
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "train failed (${r}): ${out}${err}")
endif()
file(GLOB run LIST_DIRECTORIES true ${WORK_DIR}/runs/run-*)
list(LENGTH run n)
if(NOT n EQUAL 1 OR NOT EXISTS ${run}/model.safetensors OR NOT EXISTS ${run}/config.yaml
   OR NOT EXISTS ${run}/provenance.json)
  message(FATAL_ERROR "expected one run folder with model.safetensors, config.yaml and provenance.json, found '${run}'")
endif()
file(READ ${run}/provenance.json prov)
string(JSON commit GET "${prov}" commit)
string(JSON build_type GET "${prov}" build_type)
string(JSON eigen GET "${prov}" libraries eigen)
if(commit STREQUAL "" OR build_type STREQUAL "" OR NOT eigen MATCHES "^3\\.")
  message(FATAL_ERROR "provenance.json lacks the commit, build type or library versions:\n${prov}")
endif()
# What makes float results differ between machines: the SIMD set compiled in and the cache
# sizes Eigen's GEMM blocking reads (docs/checkpoints.md, "Not across machines").
string(JSON simd GET "${prov}" simd)
string(JSON gemm_l2 GET "${prov}" eigen_cache_sizes l2)
string(JSON family_model GET "${prov}" cpu_family_model)
if(simd STREQUAL "" OR NOT gemm_l2 GREATER 0 OR family_model STREQUAL "")
  message(FATAL_ERROR "provenance.json lacks the SIMD set, Eigen's cache sizes or the CPU family/model:\n${prov}")
endif()
file(READ ${run}/results.json results)
string(JSON test_ndcg GET "${results}" test "NDCG@10")
string(JSON test_hr GET "${results}" test "HR@5")

execute_process(COMMAND ${APP} evaluate --model-path ${run} --output ${WORK_DIR}/eval
                WORKING_DIRECTORY ${SOURCE_DIR}
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
file(READ ${WORK_DIR}/eval/evaluation.json evaluation)
string(JSON file_ndcg GET "${evaluation}" test "NDCG@10")
if(NOT file_ndcg STREQUAL test_ndcg OR NOT EXISTS ${WORK_DIR}/eval/config.yaml)
  message(FATAL_ERROR "evaluate --output: evaluation.json says ${file_ndcg} (expected ${test_ndcg}) or no config.yaml")
endif()

# export: the serving folder evaluates to the same numbers; a second export there is refused.
execute_process(COMMAND ${APP} export ${run} --output ${WORK_DIR}/export WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT EXISTS ${WORK_DIR}/export/model.safetensors OR NOT EXISTS ${WORK_DIR}/export/config.yaml)
  message(FATAL_ERROR "export failed (${r}): ${out}${err}")
endif()
execute_process(COMMAND ${APP} evaluate --model-path ${WORK_DIR}/export WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCHALL "json: [^\n]*" lines "${out}")
list(GET lines -1 test_line)
string(SUBSTRING "${test_line}" 6 -1 test_json)
string(JSON ex_ndcg GET "${test_json}" "NDCG@10")
if(r OR NOT ex_ndcg STREQUAL test_ndcg)
  message(FATAL_ERROR "evaluate of the exported model (${r}) gives NDCG@10 ${ex_ndcg}, the run ${test_ndcg}: ${err}")
endif()
execute_process(COMMAND ${APP} export ${run} --output ${WORK_DIR}/export WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r EQUAL 1 OR NOT err MATCHES "exists; give another --output")
  message(FATAL_ERROR "a second export into the same folder must be refused (${r}): ${err}")
endif()

# Per-user dumps: `evaluate --per-user` rewrites the run's own per_user_test.csv byte for byte,
# and `compare` pairs the two (all differences zero) and refuses a file of other cases.
execute_process(COMMAND ${APP} evaluate --model-path ${run} --per-user ${WORK_DIR}/per_user.csv
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(READ ${run}/per_user_test.csv from_train)
file(READ ${WORK_DIR}/per_user.csv from_evaluate)
if(r OR NOT from_train STREQUAL from_evaluate)
  message(FATAL_ERROR "evaluate --per-user differs from the run's per_user_test.csv (${r}): ${err}")
endif()
execute_process(COMMAND ${APP} compare ${run} ${WORK_DIR}/per_user.csv --metric HR@5
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "HR@5 over [1-9][0-9]* paired cases" OR NOT out MATCHES "A - B: mean 0.0000 \\(std 0.0000\\)")
  message(FATAL_ERROR "compare of a run with its own dump (${r}):\n${out}${err}")
endif()
string(REGEX REPLACE "\n[^\n]*\n$" "\n" fewer "${from_train}")  # drop the last case
file(WRITE ${WORK_DIR}/fewer.csv "${fewer}")
execute_process(COMMAND ${APP} compare ${run} ${WORK_DIR}/fewer.csv
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r EQUAL 1 OR NOT err MATCHES "the runs do not hold the same cases: 1 only in")
  message(FATAL_ERROR "compare must refuse runs over different cases (${r}): ${err}")
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

file(WRITE ${WORK_DIR}/users.txt "# users\nu1\r\n\n  u7\n")
execute_process(COMMAND ${APP} recommend --model-path ${run} --users-file ${WORK_DIR}/users.txt --k 4
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out2 ERROR_VARIABLE err)
if(r OR NOT out2 STREQUAL out)
  message(FATAL_ERROR "--users-file gives other rows than --users (${r}):\n${out2}${err}")
endif()

execute_process(COMMAND ${APP} recommend --model-path ${run} --users nobody WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r EQUAL 1 OR NOT err MATCHES "user 'nobody' is not in tests/plugins/tiny.inter")
  message(FATAL_ERROR "an unknown user must be an error naming it (${r}): ${err}")
endif()
# --resume through the plugin: 2 epochs, then resumed to 3, gives the uninterrupted run's bits.
execute_process(COMMAND ${APP} train --config tests/plugins/tiny.yaml --set training.epochs=2
                        --output ${WORK_DIR}/part WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r
                        OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(GLOB part LIST_DIRECTORIES true ${WORK_DIR}/part/run-*)
if(r OR NOT EXISTS ${part}/latest.ckpt)
  message(FATAL_ERROR "the 2-epoch run failed or left no latest.ckpt (${r}): ${out}${err}")
endif()
execute_process(COMMAND ${APP} train --config tests/plugins/tiny.yaml --resume ${part}
                        --output ${WORK_DIR}/resumed WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r
                        OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(GLOB resumed LIST_DIRECTORIES true ${WORK_DIR}/resumed/run-*)
if(r OR NOT EXISTS ${resumed}/results.json)
  message(FATAL_ERROR "the resumed run failed (${r}): ${out}${err}")
endif()
file(READ ${resumed}/results.json res2)
string(JSON r_ndcg GET "${res2}" test "NDCG@10")
string(JSON r_epochs GET "${res2}" epochs_run)
if(NOT r_ndcg STREQUAL test_ndcg OR NOT r_epochs EQUAL 3)
  message(FATAL_ERROR "resumed run: test NDCG@10 ${r_ndcg} after ${r_epochs} epochs; uninterrupted: ${test_ndcg}")
endif()
message("roundtrip ok")
