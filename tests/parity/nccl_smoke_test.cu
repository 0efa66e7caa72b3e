// NCCL's one-rank smoke test (issue 17; backend/cuda/nccl.cuh): the communicator comes up
// through a host communicator's broadcast, and float and double all-reduces on device memory
// complete in place. One rank: the sum is the rank's own values, and the test mostly proves the
// library, the device and the non-blocking polling work together. Multi-GPU NCCL is unverified
// (docs/distributed.md). Skips, saying so, where no GPU is present.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "recdistill/backend/cuda/nccl.cuh"

namespace {

using namespace recdistill;

constexpr const char* kNoDevice = "no CUDA device present: NCCL not checked";

// The host side of a one-process job.
struct SoloComm final : dist::Comm {
  int broadcasts = 0, reductions = 0;
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(double*, size_t, const std::string&) override { ++reductions; }
  void allreduce_sum(float*, size_t, const std::string&) override { ++reductions; }
  std::vector<int64_t> allgather(const std::vector<int64_t>& x, const std::string&) override { return x; }
  std::string broadcast(const std::string& text, const std::string&) override {
    ++broadcasts;
    return text;
  }
  [[noreturn]] void abort(const std::string& message) override { throw std::runtime_error(message); }
};

template <class T>
void expect_sum_of_one_rank(dist::Comm& nccl, size_t n) {
  std::vector<T> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = T(0.25) * T(i) - T(3);
  cuda::DeviceBuffer<T> d(h);
  nccl.allreduce_sum(d.data(), n, "the smoke test's all-reduce");
  std::vector<T> back(n);
  cuda::Backend::to_host(back.data(), d.data(), n);
  EXPECT_EQ(back, h);
}

TEST(Nccl, OneRankAllReducesOnTheDevice) {
  if (!cuda::device_available()) GTEST_SKIP() << kNoDevice;
  SoloComm host;
  const auto nccl = dist::DeviceComm<cuda::Backend>::make(host, 60);
  ASSERT_NE(nccl, nullptr);
  EXPECT_EQ(host.broadcasts, 1) << "rank 0's NCCL id goes through the host communicator";
  EXPECT_EQ(nccl->size(), 1);
  expect_sum_of_one_rank<float>(*nccl, 1 << 20);
  expect_sum_of_one_rank<double>(*nccl, 1000);
  expect_sum_of_one_rank<float>(*nccl, 0);
  EXPECT_EQ(host.reductions, 3) << "every collective checks in over the host communicator first";
}

}  // namespace
