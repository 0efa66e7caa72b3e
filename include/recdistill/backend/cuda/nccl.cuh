// recdistill/backend/cuda/nccl.cuh: data-parallel gradients summed on the GPUs with NCCL
// (docs/distributed.md), so they never leave device memory.
//
// One rank per GPU; the job's ranks are the host communicator's (MPI, apps/mpi_world.cpp), which
// also carries NCCL's id from rank 0 to the others. NCCL says nothing about a rank that never
// arrives, so every collective first checks in over the host communicator: that wait has the
// host's deadline and names the missing rank. The NCCL call itself is non-blocking and polled
// against runtime.dist_timeout_s; a transport that stalls with every rank present ends the job
// with NCCL's state, never a silent hang.
//
// Everything runs on the legacy default stream, like the rest of cuda::Backend: the all-reduce is
// ordered after the backward's kernels and before the optimiser's.
#pragma once
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "recdistill/backend/cuda/backend.cuh"
#include "recdistill/core/error.hpp"
#include "recdistill/dist/device_comm.hpp"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "recdistill needs NCCL 2.14 or newer (non-blocking communicators); configure with -DRECDISTILL_NCCL=OFF"
#endif

namespace recdistill::cuda {

class NcclComm final : public dist::Comm {
 public:
  // Every rank of `host` together, each with its own GPU current (select_device).
  NcclComm(dist::Comm& host, double timeout_s) : host_(host), timeout_s_(timeout_s) {
    ncclUniqueId id{};
    if (host.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const std::string bytes = host.broadcast(host.rank() == 0 ? std::string(id.internal, sizeof id.internal) : "",
                                             "the NCCL communicator's id");
    RD_REQUIRE(bytes.size() == sizeof id.internal, "NCCL id of ", bytes.size(), " bytes, expected ",
               sizeof id.internal);
    std::memcpy(id.internal, bytes.data(), sizeof id.internal);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // calls return at once; wait() polls them against the deadline
    try {
      const ncclResult_t r = ncclCommInitRankConfig(&comm_, host.size(), id, host.rank(), &config);
      if (r != ncclInProgress) check(r, "ncclCommInitRankConfig");
      wait("the NCCL communicator's set-up", false);
    } catch (...) {
      if (comm_) (void)ncclCommAbort(comm_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }
  // The clean end (finalize, which completes NCCL's pending work, then destroy) within the
  // deadline; after an error, or when it does not complete in time, abort.
  ~NcclComm() override {
    if (!comm_) return;
    ncclResult_t state = ncclCommFinalize(comm_);
    const auto start = std::chrono::steady_clock::now();
    while (state == ncclInProgress && seconds_since(start) < timeout_s_) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
    }
    if (state == ncclSuccess)
      (void)ncclCommDestroy(comm_);
    else
      (void)ncclCommAbort(comm_);
  }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  // x: device memory. In place; NCCL's ring order is fixed for a given rank count and topology,
  // so the same job repeats its bits.
  void allreduce_sum(double* x, size_t n, const std::string& what) override { reduce(x, n, ncclDouble, what); }
  void allreduce_sum(float* x, size_t n, const std::string& what) override { reduce(x, n, ncclFloat, what); }
  // Host data: the host communicator's.
  std::vector<int64_t> allgather(const std::vector<int64_t>& x, const std::string& what) override {
    return host_.allgather(x, what);
  }
  std::string broadcast(const std::string& text, const std::string& what) override {
    return host_.broadcast(text, what);
  }
  [[noreturn]] void abort(const std::string& message) override {
    host_.abort(message);
    std::abort();  // not reached: the host's abort ends the job (its attribute is not inherited)
  }

 private:
  void reduce(void* x, size_t n, ncclDataType_t type, const std::string& what) {
    double here = 1;  // the check-in: a rank that never arrives is named by the host's deadline
    host_.allreduce_sum(&here, 1, what + " (check-in)");
    if (n == 0) return;
    const ncclResult_t r = ncclAllReduce(x, x, n, type, ncclSum, comm_, cudaStreamLegacy);
    if (r != ncclInProgress) check(r, "ncclAllReduce");
    wait(what, true);
  }
  // Until NCCL's pending call (and, for a collective, the stream) completes, an error shows or
  // the deadline passes.
  void wait(const std::string& what, bool stream) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state != ncclSuccess && state != ncclInProgress) check(state, what.c_str());
      if (state == ncclSuccess) {
        if (!stream) return;
        const cudaError_t e = cudaStreamQuery(cudaStreamLegacy);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) RD_CUDA_CHECK(e);
      }
      const double waited = seconds_since(start);
      if (waited > timeout_s_) {
        (void)ncclCommAbort(comm_);
        comm_ = nullptr;
        host_.abort(cat("waited ", int(waited), " s (runtime.dist_timeout_s ", timeout_s_, ") at ", what,
                        " on NCCL with every rank checked in: the transport between the GPUs stalled "
                        "(NCCL_DEBUG=INFO says more)"));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  void check(ncclResult_t r, const char* call) {
    if (r == ncclSuccess) return;
    const char* last = comm_ ? ncclGetLastError(comm_) : ncclGetLastError(nullptr);
    fail("NCCL: ", call, " failed on rank ", host_.rank(), " of ", host_.size(), ": ", ncclGetErrorString(r),
         last && *last ? cat(" (", last, ")") : std::string(), " (NCCL_DEBUG=INFO says more)");
  }

  dist::Comm& host_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace recdistill::cuda

namespace recdistill::dist {

// cuda::Backend's gradients are summed with NCCL (trainer: FitOptions::device_comm).
template <>
struct DeviceComm<cuda::Backend> {
  static std::unique_ptr<Comm> make(Comm& host, double timeout_s) {
    cuda::device_allocator().release_cached();  // NCCL's own buffers come from cudaMalloc
    return std::make_unique<cuda::NcclComm>(host, timeout_s);
  }
};

}  // namespace recdistill::dist
