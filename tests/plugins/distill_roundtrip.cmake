# ctest driver: `recdistill train` a tiny SASRecLLM (profile distillation), `evaluate` its run
# folder (the run's test numbers, with the distillation head in the weights), `export` it as the
# plain SASRec backbone (config and weights say SASRec, no head tensor), and `evaluate` and
# `recommend` the export with the SASRec model: the same test numbers.
file(REMOVE_RECURSE ${WORK_DIR})
set(args train --config tests/plugins/tiny.yaml --set model.model_name=SASRecLLM --set model.inner_size=8
    --set data.user_profile_embeddings_files=tests/plugins/tiny_profiles.json --set training.fine_tune_epoch=2
    --set model.weighting_scheme=attention --output ${WORK_DIR}/runs)
execute_process(COMMAND ${APP} ${args} WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r)
  message(FATAL_ERROR "train failed (${r}): ${out}${err}")
endif()
file(GLOB run LIST_DIRECTORIES true ${WORK_DIR}/runs/run-*)
file(READ ${run}/results.json results)
string(JSON test_ndcg GET "${results}" test "NDCG@10")

function(test_ndcg_of model_path out_var)
  execute_process(COMMAND ${APP} evaluate --model-path ${model_path} WORKING_DIRECTORY ${SOURCE_DIR}
                  RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(r)
    message(FATAL_ERROR "evaluate ${model_path} failed (${r}): ${out}${err}")
  endif()
  string(REGEX MATCHALL "json: [^\n]*" lines "${out}")
  list(GET lines -1 test_line)
  string(SUBSTRING "${test_line}" 6 -1 test_json)
  string(JSON v GET "${test_json}" "NDCG@10")
  set(${out_var} ${v} PARENT_SCOPE)
endfunction()

test_ndcg_of(${run} run_ndcg)
if(NOT run_ndcg STREQUAL test_ndcg)
  message(FATAL_ERROR "evaluate of the SASRecLLM run gives NDCG@10 ${run_ndcg}, the run reported ${test_ndcg}")
endif()
execute_process(COMMAND ${APP} export ${run} --output ${WORK_DIR}/export WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(r OR NOT out MATCHES "as the plain SASRec model, without the training-only tensors")
  message(FATAL_ERROR "export failed (${r}): ${out}${err}")
endif()
file(READ ${WORK_DIR}/export/config.yaml cfg)
file(READ ${WORK_DIR}/export/model.safetensors weights OFFSET 8 LIMIT 4000)  # after the header length
if(NOT cfg MATCHES "model_name: SASRec\n" OR weights MATCHES "aggregator" OR NOT weights MATCHES "\"model\":\"SASRec\"")
  message(FATAL_ERROR "the export is not a plain SASRec:\n${cfg}")
endif()
test_ndcg_of(${WORK_DIR}/export export_ndcg)
if(NOT export_ndcg STREQUAL test_ndcg)
  message(FATAL_ERROR "evaluate of the exported backbone gives NDCG@10 ${export_ndcg}, the run ${test_ndcg}")
endif()
execute_process(COMMAND ${APP} recommend --model-path ${WORK_DIR}/export --users u1 --k 3 WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCHALL "\nu1\t" rows "\n${out}")
list(LENGTH rows n)
if(r OR NOT n EQUAL 3)
  message(FATAL_ERROR "recommend from the export (${r}) gave ${n} rows:\n${out}${err}")
endif()
message("distill roundtrip ok: NDCG@10 ${test_ndcg} from the run, its evaluation and the exported SASRec")
