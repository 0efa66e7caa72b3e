# ctest driver: install the package from BUILD_DIR into WORK_DIR/prefix, build the example
# plugin against it with find_package(recdistill), then have the installed app list it (next to
# the installed SASRec plugin) and train, evaluate and recommend with its model.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE r OUTPUT_QUIET)
if(r)
  message(FATAL_ERROR "cmake --install failed: ${r}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE r OUTPUT_QUIET)
if(r)
  message(FATAL_ERROR "configuring the example plugin with find_package(recdistill) failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE r)
if(r)
  message(FATAL_ERROR "building the example plugin failed")
endif()
set(app ${WORK_DIR}/prefix/bin/recdistill)
function(run expect_regex)
  execute_process(COMMAND ${app} ${ARGN} WORKING_DIRECTORY ${DATA_DIR}
                  RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(r OR NOT "${out}" MATCHES "${expect_regex}")
    message(FATAL_ERROR "recdistill ${ARGN}: exit ${r}, expected output matching '${expect_regex}':\n${out}${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
endfunction()
# The installed app finds the installed SASRec plugin on its own and the example in --plugin-dir.
run("example 1.0  \\(ABI version ${ABI}\\)\n    file: [^\n]*libexample_popularity.so\n    models:\n      Popularity[^\n]*\n    strategies:\n      Alternate"
    plugins --plugin-dir ${WORK_DIR}/build)
if(NOT last_out MATCHES "sasrec [^\n]*\n    file: ${WORK_DIR}/prefix/lib[^\n]*/recdistill/plugins/librecdistill_sasrec.so")
  message(FATAL_ERROR "the installed app did not find the installed SASRec plugin:\n${last_out}")
endif()
# Its config holds the app's keys and the example's own model.popularity_window (declared by
# the plugin); the app accepts it only because the Popularity model declares it.
run("test results" train --config popularity.yaml --set data.path=tiny.inter
    --plugin-dir ${WORK_DIR}/build --output ${WORK_DIR}/runs)
file(GLOB run_dir LIST_DIRECTORIES true ${WORK_DIR}/runs/run-*)
file(READ ${run_dir}/config.yaml resolved)
if(NOT resolved MATCHES "popularity_window: 2")
  message(FATAL_ERROR "the run's config.yaml lacks the plugin's key:\n${resolved}")
endif()
run("json: " evaluate --model-path ${run_dir} --plugin-dir ${WORK_DIR}/build)
run("u1\t1\ti[0-9]+" recommend --model-path ${run_dir} --users u1 --k 2 --plugin-dir ${WORK_DIR}/build)
message("example plugin ok")
