# CUDA detection for CMake 3.25 (DESIGN.md, Decisions: CUDA). nvcc is looked up on PATH and
# under the toolkit's default prefix; the architectures are set explicitly (90 = H100/H200).
# AUTO builds the CUDA targets when nvcc is found and says loudly which way it went.
set(RECDISTILL_CUDA_ENABLED OFF)
if(NOT RECDISTILL_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(RECDISTILL_NVCC nvcc PATHS /usr/local/cuda/bin /usr/local/cuda-13.0/bin
                 /opt/cuda/bin NO_CACHE)
    if(RECDISTILL_NVCC)
      set(CMAKE_CUDA_COMPILER ${RECDISTILL_NVCC})
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    # recdistill::recdistill requires cxx_std_20, which CMake also applies to CUDA sources, but
    # CMake 3.25 knows no C++20 flag for nvcc ("requires the language dialect CUDA20" at
    # generate time). nvcc >= 12 takes -std=c++20; newer CMake defines these itself.
    if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(RECDISTILL_CUDA_ENABLED ON)
  elseif(RECDISTILL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RECDISTILL_CUDA=ON but no nvcc was found (PATH, /usr/local/cuda/bin)")
  endif()
endif()
if(RECDISTILL_CUDA_ENABLED)
  message(STATUS "recdistill: CUDA backend ENABLED (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "recdistill: CUDA backend DISABLED (RECDISTILL_CUDA=${RECDISTILL_CUDA})")
endif()

# NCCL (docs/distributed.md): the CUDA plugin sums data-parallel gradients on the GPUs with it.
# Found beside the toolkit (its headers and libnccl.so); an imported target recdistill_nccl.
set(RECDISTILL_HAVE_NCCL OFF)
if(RECDISTILL_NCCL STREQUAL "ON" AND NOT RECDISTILL_CUDA_ENABLED)
  message(FATAL_ERROR "RECDISTILL_NCCL=ON needs the CUDA backend (RECDISTILL_CUDA and nvcc)")
endif()
if(RECDISTILL_CUDA_ENABLED AND NOT RECDISTILL_NCCL STREQUAL "OFF")
  find_path(RECDISTILL_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(RECDISTILL_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(RECDISTILL_NCCL_INCLUDE AND RECDISTILL_NCCL_LIBRARY)
    add_library(recdistill_nccl SHARED IMPORTED)
    set_target_properties(recdistill_nccl PROPERTIES IMPORTED_LOCATION ${RECDISTILL_NCCL_LIBRARY}
                          INTERFACE_INCLUDE_DIRECTORIES ${RECDISTILL_NCCL_INCLUDE})
    set(RECDISTILL_HAVE_NCCL ON)
    message(STATUS "recdistill: NCCL ${RECDISTILL_NCCL_LIBRARY}: data-parallel gradients on the GPUs")
  elseif(RECDISTILL_NCCL STREQUAL "ON")
    message(FATAL_ERROR "RECDISTILL_NCCL=ON but nccl.h / libnccl.so were not found beside the CUDA toolkit")
  else()
    message(STATUS "recdistill: NCCL not found: data-parallel CUDA gradients go through host memory")
  endif()
endif()
