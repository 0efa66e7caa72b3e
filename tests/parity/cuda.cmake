# CUDA parity tests: cuda::Backend against the CPU reference backend (tests/parity).
# Built wherever nvcc is found (RECDISTILL_CUDA_ENABLED, cmake/RecdistillCuda.cmake); at run
# time the GPU tests report SKIPPED when no device or driver is present. Listing the tests
# (gtest_discover_tests) never touches the GPU, so discovery works on GPU-less machines.
if(RECDISTILL_CUDA_ENABLED)
  # The CPU reference (Eigen) is compiled by the host compiler with the project's flags
  # (-march=native etc. are host-compiler options nvcc would reject), then linked in.
  add_library(recdistill_cuda_cpu_reference OBJECT ${CMAKE_CURRENT_LIST_DIR}/cpu_reference.cpp)
  target_link_libraries(recdistill_cuda_cpu_reference PRIVATE recdistill::recdistill
                        recdistill_build_flags)
  # GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512 intrinsics when
  # inlining Eigen's GEMM; it says nothing about this code.
  target_compile_options(recdistill_cuda_cpu_reference PRIVATE -Wno-maybe-uninitialized)

  add_executable(recdistill_cuda_tests ${CMAKE_CURRENT_LIST_DIR}/cuda_parity_test.cu
                 ${CMAKE_CURRENT_LIST_DIR}/cuda_ops_parity_test.cu
                 $<TARGET_OBJECTS:recdistill_cuda_cpu_reference>)
  # Link the shared runtime, the same one CUDA::cudart names (never static and shared both).
  set_target_properties(recdistill_cuda_tests PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  # --expt-relaxed-constexpr: kernels call the constexpr Philox of core/random.hpp (and
  # std::array's members), so device dropout draws the CPU's numbers.
  target_compile_options(recdistill_cuda_tests PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter,-Wno-restrict --expt-relaxed-constexpr -Werror cross-execution-space-call>)
  # OpenMP comes with the CPU reference's flags when Eigen uses it.
  target_link_libraries(recdistill_cuda_tests PRIVATE recdistill::recdistill GTest::gtest_main
                        CUDA::cublas CUDA::cudart
                        $<$<BOOL:${OpenMP_CXX_FOUND}>:OpenMP::OpenMP_CXX>)
  # The "cuda." prefix lets `ctest -R cuda` (case-sensitive) select exactly these tests.
  gtest_discover_tests(recdistill_cuda_tests TEST_PREFIX "cuda." DISCOVERY_TIMEOUT 60)
endif()

# NCCL's one-rank smoke test (tests/parity/nccl_smoke_test.cu): a binary of its own, so the CUDA
# tests above run where libnccl is absent (the GPU bundle of bench/gpu leaves it out).
if(RECDISTILL_CUDA_ENABLED AND RECDISTILL_HAVE_NCCL)
  add_executable(recdistill_nccl_tests ${CMAKE_CURRENT_LIST_DIR}/nccl_smoke_test.cu)
  set_target_properties(recdistill_nccl_tests PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  target_compile_options(recdistill_nccl_tests PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter,-Wno-restrict --expt-relaxed-constexpr -Werror cross-execution-space-call>)
  target_link_libraries(recdistill_nccl_tests PRIVATE recdistill::recdistill GTest::gtest_main
                        CUDA::cublas CUDA::cudart recdistill_nccl)
  gtest_discover_tests(recdistill_nccl_tests TEST_PREFIX "cuda." DISCOVERY_TIMEOUT 60)
endif()
