// recdistill/dist/device_comm.hpp: a backend's collective over its own memory (docs/distributed.md).
//
// Data-parallel gradients are summed in place where they lie when the backend offers such a
// communicator (cuda::Backend with NCCL: backend/cuda/nccl.cuh specialises DeviceComm for it);
// otherwise the trainer copies them to the host and sums them over the job's dist::Comm.
#pragma once
#include <memory>

#include "recdistill/dist/comm.hpp"

namespace recdistill::dist {

template <class B>
struct DeviceComm {
  // A communicator of `host`'s ranks whose allreduce_sum takes buffers in B's memory, made by
  // every rank together (FitOptions::device_comm); null where B has none. `timeout_s` bounds
  // each wait, as runtime.dist_timeout_s does for the host collectives.
  static std::unique_ptr<Comm> make(Comm& host, double timeout_s) {
    (void)host;
    (void)timeout_s;
    return nullptr;
  }
};

}  // namespace recdistill::dist
