# ctest driver: `recdistill alkd --stages pretrain,predict` on the tiny session fixture writes the
# teacher's and the student's runs and the documented predictions file; a rerun on the folder
# skips the finished stages; predict before pretrain, and a resumed folder with another config,
# are refused; recommend serves an anonymous session.
file(REMOVE_RECURSE ${WORK_DIR})
set(cfg tests/plugins/alkd/tiny_alkd.yaml)
execute_process(COMMAND ${APP} alkd --config ${cfg} --stages predict --output ${WORK_DIR}/early
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r OR NOT err MATCHES "a new run folder starts with the pretrain stage" OR EXISTS ${WORK_DIR}/early)
  message(FATAL_ERROR "predict before pretrain was not refused (${r}): ${out}${err}")
endif()
execute_process(COMMAND ${APP} alkd --config ${cfg} --stages pretrain,predict --output ${WORK_DIR}
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "alkd failed (${r}): ${out}${err}")
endif()
foreach(expect "teacher: STAMP with hidden_units 16, patience 3" "student: STAMP with hidden_units 4, patience 2"
               "model: STAMP variant=alkdrec_simplified d=16" "80 training sessions in")
  if(NOT out MATCHES "${expect}")
    message(FATAL_ERROR "alkd output lacks '${expect}':\n${out}")
  endif()
endforeach()
file(GLOB folder ${WORK_DIR}/alkd-*-seed5)
foreach(f alkd_config.yaml teacher.done student.done predictions.jsonl)
  if(NOT EXISTS ${folder}/${f})
    message(FATAL_ERROR "the run folder lacks ${f}")
  endif()
endforeach()
file(STRINGS ${folder}/predictions.jsonl lines)
list(LENGTH lines n)
if(NOT n EQUAL 81)
  message(FATAL_ERROR "predictions.jsonl has ${n} lines, expected a header and 80 records")
endif()
list(GET lines 0 header)
if(NOT header MATCHES "^\\{\"format\": \"recdistill-alkd-predictions\", \"version\": 1, \"sessions\": 80, \"items\": 30, \"k\": 10, \"window\": 10, \"teacher\": \"teacher/run-")
  message(FATAL_ERROR "unexpected header: ${header}")
endif()
list(GET lines 1 first)
foreach(key "\"session_id\": \"0\"" "\"teacher_rank\": " "\"candidates\": \\[" "\"difficulty\": \\{\"teacher_consistency\": -")
  if(NOT first MATCHES "${key}")
    message(FATAL_ERROR "the first record lacks ${key}: ${first}")
  endif()
endforeach()
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder}
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "teacher: done" OR NOT out MATCHES "student: done" OR NOT out MATCHES "predict: done")
  message(FATAL_ERROR "the rerun did not skip the finished stages (${r}): ${out}${err}")
endif()
execute_process(COMMAND ${APP} alkd --config ${cfg} --set alkd.top_k=5 --resume ${folder}
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r OR NOT err MATCHES "the config differs from the one this folder was made with")
  message(FATAL_ERROR "a changed config on resume was not refused (${r}): ${out}${err}")
endif()
# recommend for an anonymous session (raw item ids) from the student's run; the session's own
# items are never recommended.
file(READ ${folder}/student.done student)
execute_process(COMMAND ${APP} recommend --model-path ${folder}/${student} --items 3,4,5 --k 3
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "session-1\t1\t[0-9]+\t" OR NOT out MATCHES "session-1\t3\t" OR out MATCHES "session-1\t[0-9]\t[345]\t")
  message(FATAL_ERROR "recommend --items failed (${r}): ${out}${err}")
endif()
message("alkd stages ok")
