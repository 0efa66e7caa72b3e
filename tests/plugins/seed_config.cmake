# ctest driver: the seed README's example config (experiments/seed/sasrec_llm_ml100k.yaml) runs
# with ONLY its paths changed. The tiny fixture's temporal split is exported with
# `prepare --export-json`, the config's data and profile paths are pointed at it and at the tiny
# profiles, and `train` must run all 25 epochs on the interchange files.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${APP} prepare --config tests/plugins/tiny.yaml --set data.split=temporal
                        --export-json ${WORK_DIR}/seed
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "prepare --export-json failed (${r}): ${out}${err}")
endif()
file(READ ${SOURCE_DIR}/experiments/seed/sasrec_llm_ml100k.yaml cfg)
string(REPLACE "data/cache/seed_ml100k" "${WORK_DIR}/seed" cfg "${cfg}")
string(REPLACE "data/cache/profiles/ml100k_meta_temporal.json" "tests/plugins/tiny_profiles.json" cfg "${cfg}")
string(REPLACE "model_dir: models/" "model_dir: ${WORK_DIR}/models/" cfg "${cfg}")
file(WRITE ${WORK_DIR}/seed.yaml "${cfg}")
execute_process(COMMAND ${APP} train --config ${WORK_DIR}/seed.yaml
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "train with the seed's example config failed (${r}): ${out}${err}")
endif()
foreach(expect "split interchange: 32 training sequences, 8 validation and 21 test cases"
               "40 of 40 users have a profile" "distilled by SASRecLLM" "test results \\(weights of epoch 25,")
  if(NOT out MATCHES "${expect}")
    message(FATAL_ERROR "train output lacks '${expect}':\n${out}")
  endif()
endforeach()
message("seed example config ok")
