# ctest driver: `recdistill alkd --stages pretrain,predict` on the tiny session fixture writes the
# teacher's and the student's runs and the documented predictions file; a rerun on the folder
# skips the finished stages; predict before pretrain, and a resumed folder with another config,
# are refused; recommend serves an anonymous session. Then the oracle (recorded answers with
# their defects), select (regenerated and replayed), distill and report stages; and resumption
# from what a kill can leave in each (writes are atomic, so a killed stage leaves some of its
# files and not others): a cache without its oracle.json, a missing selection file, a finished
# fine-tuning without its .done marker.
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
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages pretrain,predict
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
# The later stages.
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages oracle,select
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
foreach(expect "70 answers \\(70 new in the cache\\), 1 unusable, 2 repeated ids, 1 out-of-range ids"
               "select regenerated-alkdrec: 30 answered of [0-9]+ drawn" "k\\* [0-9]+ of 80"
               "its answers hold [0-9]+ out-of-range, [0-9]+ repeated and [0-9]+ truncated ids"
               "select replay-hardest: 30 answered of [0-9]+ drawn \\([0-9]+ unusable, [0-9]+ skipped, shortfall 0\\)")
  if(r OR NOT out MATCHES "${expect}")
    message(FATAL_ERROR "oracle/select output lacks '${expect}' (${r}):\n${out}${err}")
  endif()
endforeach()
file(READ ${folder}/reference/selections/regenerated-alkdrec.json sel_before)
if(NOT sel_before MATCHES "\"sessions\": \\[\"[0-9]+\"" OR NOT sel_before MATCHES "\"shortfall\": 0"
   OR NOT sel_before MATCHES "\"released_overlap\": \\{\"alkdrec\": [0-9]+, \"rad_bc\": [0-9]+"
   OR NOT sel_before MATCHES "\"validation\": \\{\"unusable\": [0-9]+, \"out_of_range\": [0-9]+, \"repeats\": [0-9]+, \"truncated\": [0-9]+, \"non_candidates\": [0-9]+\\}")
  message(FATAL_ERROR "unexpected selection file: ${sel_before}")
endif()
# Killed in select (one selection written, another not) and in oracle (the cache written, not
# oracle.json): the rerun redoes only what is missing, with the same result.
file(REMOVE ${folder}/reference/selections/regenerated-alkdrec.json ${folder}/reference/oracle.json)
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages oracle,select
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "70 answers \\(0 new in the cache\\)" OR NOT out MATCHES "select replay-hardest: done")
  message(FATAL_ERROR "the rerun of oracle/select did not resume (${r}): ${out}${err}")
endif()
file(READ ${folder}/reference/selections/regenerated-alkdrec.json sel_after)
if(NOT sel_before STREQUAL sel_after)
  message(FATAL_ERROR "the redone selection differs:\n${sel_before}\n${sel_after}")
endif()
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder}
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
foreach(expect "the pre-trained student on validation: HR@10 " "distill teacher_only: 800 rows from 80 sessions" "distill replay-alkdrec: [0-9]+ rows from [0-9]+ sessions"
               "loss=weighted_pairwise" "initial weights: " "\\| replay-alkdrec \\| [0-9.]+ \\([0-9]+\\) \\|")
  if(r OR NOT out MATCHES "${expect}")
    message(FATAL_ERROR "distill/report output lacks '${expect}' (${r}):\n${out}${err}")
  endif()
endforeach()
foreach(f reference/report.json reference/report.md reference/distill/teacher_only.done reference/distill/regenerated-rad_bc.done
          reference/distill/replay-easiest.done reference/stages_config.yaml reference/distill/initial_student.json
          reference/distill/replay-alkdrec.rows.json)
  if(NOT EXISTS ${folder}/${f})
    message(FATAL_ERROR "the run folder lacks ${f}")
  endif()
endforeach()
# The later stages' settings are those of the preset's folder: another budget is refused there.
# upstream_compat's model switches (spec §9 Q1-Q5) change the pre-trained models, so resuming this
# folder under it is refused, naming them; with them kept off, its later stages run beside
# reference's, on the same pre-trained models.
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages select --set alkd.budget=20
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r OR NOT err MATCHES "alkd.budget: folder 30, now 20")
  message(FATAL_ERROR "a changed later-stage setting was not refused (${r}): ${out}${err}")
endif()
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages select --set compat=upstream_compat
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT r OR NOT err MATCHES "model.legacy_pad_zero: folder false, now true"
   OR NOT err MATCHES "model.legacy_stamp_tables: folder false, now true")
  message(FATAL_ERROR "upstream_compat's model switches on a reference folder were not refused (${r}): ${out}${err}")
endif()
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages oracle,select,distill,report
                        --set compat=upstream_compat --set alkd.strategies=[alkdrec] --set alkd.selection_sources=[replay]
                        --set model.legacy_pad_zero=false --set model.legacy_stamp_tables=false
                        --set alkd.attmix_prediction_forward_scores=false
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "loss=inbatch_bpr" OR NOT EXISTS ${folder}/upstream_compat/report.md
   OR NOT out MATCHES "distill replay-alkdrec: [0-9]+ rows from [0-9]+ sessions, [0-9]+ weight units")
  message(FATAL_ERROR "upstream_compat's later stages failed (${r}): ${out}${err}")
endif()
file(READ ${folder}/upstream_compat/stages_config.yaml compat_cfg)
if(NOT compat_cfg MATCHES "legacy_row_duplication: true" OR NOT compat_cfg MATCHES "sampling: sequential")
  message(FATAL_ERROR "upstream_compat's switches are not recorded: ${compat_cfg}")
endif()
# Killed after a fine-tuning finished but before its marker: the rerun resumes that run from its
# checkpoint, which gives the same test numbers, and leaves the others alone.
file(READ ${folder}/reference/distill/replay-alkdrec.done run_before)
file(READ ${folder}/reference/${run_before}/results.json res_before)
string(REGEX MATCH "\"test\": [^\n]*" test_before "${res_before}")
file(REMOVE ${folder}/reference/distill/replay-alkdrec.done)
execute_process(COMMAND ${APP} alkd --config ${cfg} --resume ${folder} --stages distill
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "distill replay-rad_bc: done" OR NOT out MATCHES "resuming ")
  message(FATAL_ERROR "the rerun of distill did not resume (${r}): ${out}${err}")
endif()
file(READ ${folder}/reference/distill/replay-alkdrec.done run_after)
file(READ ${folder}/reference/${run_after}/results.json res_after)
string(REGEX MATCH "\"test\": [^\n]*" test_after "${res_after}")
if(NOT test_before STREQUAL test_after)
  message(FATAL_ERROR "the resumed fine-tuning tests differently:\n${test_before}\n${test_after}")
endif()
# upstream_compat from its own pre-training: its config records the model switches, and the
# stored windows lack item 0 (session 0's window holds it: reference keeps it, upstream_compat
# drops it).
execute_process(COMMAND ${APP} alkd --config ${cfg} --stages pretrain,predict --set compat=upstream_compat
                        --output ${WORK_DIR}/compat
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "80 training sessions in")
  message(FATAL_ERROR "alkd under upstream_compat failed (${r}): ${out}${err}")
endif()
file(GLOB cfolder ${WORK_DIR}/compat/alkd-*-seed5)
file(READ ${cfolder}/alkd_config.yaml ccfg)
if(NOT ccfg MATCHES "legacy_pad_zero: true" OR NOT ccfg MATCHES "legacy_stamp_tables: true")
  message(FATAL_ERROR "upstream_compat's model switches are not in its config: ${ccfg}")
endif()
file(STRINGS ${folder}/predictions.jsonl ref_lines)
file(STRINGS ${cfolder}/predictions.jsonl compat_lines)
list(GET ref_lines 1 ref_first)
list(GET compat_lines 1 compat_first)
if(NOT ref_first MATCHES "\"window\": \\[1, 5, 28, 4, 7, 0, 21, 11, 22, 3\\]"
   OR NOT compat_first MATCHES "\"window\": \\[1, 5, 28, 4, 7, 21, 11, 22, 3\\]")
  message(FATAL_ERROR "session 0's stored windows: reference ${ref_first}\nupstream_compat ${compat_first}")
endif()
message("alkd stages ok")
