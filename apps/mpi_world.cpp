// apps/mpi_world.cpp: dist::Comm on MPI (OpenMPI), with a deadline on every collective.
//
// Each collective is non-blocking and polled against runtime.dist_timeout_s. So that the message
// can name the rank that did not arrive, every rank but 0 first posts a one-number check-in
// (the collective's sequence number) to rank 0: when rank 0's deadline passes it names the ranks
// whose check-in is missing and ends the job (MPI_Abort). The other ranks wait a grace period
// longer; if theirs passes, rank 0 itself never arrived. A rank that exits or is killed ends the
// job through mpirun, which names the rank.
//
// Test hooks (tests/dist): RECDISTILL_TEST_HANG_AT=R:K makes rank R sleep forever before its K-th
// collective, RECDISTILL_TEST_EXIT_AT=R:K makes it exit (status 3) there.
#include "mpi_world.hpp"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "recdistill/core/error.hpp"

namespace recdistill::app {
namespace {

constexpr int kCheckinTag = 7301;

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

// "R:K" from an environment variable (test hooks); {-1, 0} when unset.
std::pair<int, uint64_t> hook(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return {-1, 0};
  int r = -1;
  unsigned long long k = 0;
  if (std::sscanf(v, "%d:%llu", &r, &k) != 2) return {-1, 0};
  return {r, k};
}

class MpiComm final : public dist::Comm {
 public:
  MpiComm() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    hang_ = hook("RECDISTILL_TEST_HANG_AT");
    exit_ = hook("RECDISTILL_TEST_EXIT_AT");
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void set_timeout(double s) { timeout_s_ = s; }

  void allreduce_sum(double* x, size_t n, const std::string& what) override {
    check_count(n, what);
    collective(what, [&](MPI_Request* r) {
      MPI_Iallreduce(MPI_IN_PLACE, x, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, r);
    });
  }
  void allreduce_sum(float* x, size_t n, const std::string& what) override {
    check_count(n, what);
    collective(what, [&](MPI_Request* r) {
      MPI_Iallreduce(MPI_IN_PLACE, x, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, r);
    });
  }
  std::vector<int64_t> allgather(const std::vector<int64_t>& x, const std::string& what) override {
    check_count(x.size(), what);
    std::vector<int> counts(size_t(size_), 0), offsets(size_t(size_), 0);
    const int mine = int(x.size());
    collective(cat(what, " (counts)"), [&](MPI_Request* r) {
      MPI_Iallgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD, r);
    });
    int64_t total = 0;
    for (int i = 0; i < size_; ++i) {
      offsets[size_t(i)] = int(total);
      total += counts[size_t(i)];
    }
    if (total > INT32_MAX) fail(what, ": ", total, " values exceed one MPI message");
    std::vector<int64_t> out(static_cast<size_t>(total));
    collective(what, [&](MPI_Request* r) {
      MPI_Iallgatherv(x.data(), mine, MPI_INT64_T, out.data(), counts.data(), offsets.data(), MPI_INT64_T,
                      MPI_COMM_WORLD, r);
    });
    return out;
  }
  std::string broadcast(const std::string& text, const std::string& what) override {
    check_count(text.size(), what);
    uint64_t n = rank_ == 0 ? text.size() : 0;
    collective(cat(what, " (length)"), [&](MPI_Request* r) { MPI_Ibcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, r); });
    std::string out = rank_ == 0 ? text : std::string(size_t(n), '\0');
    if (n > INT32_MAX) fail(what, ": ", n, " bytes exceed one MPI message");
    collective(what, [&](MPI_Request* r) { MPI_Ibcast(out.data(), int(n), MPI_CHAR, 0, MPI_COMM_WORLD, r); });
    return out;
  }
  [[noreturn]] void abort(const std::string& message) override { end_job(message, 1); }

  [[noreturn]] void end_job(const std::string& message, int code) {
    std::cerr << "rank " << rank_ << " of " << size_ << ": " << message << "\n" << std::flush;
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  void check_count(size_t n, const std::string& what) {
    if (n > size_t(INT32_MAX)) fail(what, ": ", n, " values exceed one MPI message");
  }

  // Runs one non-blocking collective `start` to completion, with the check-in and the deadline.
  template <class Start>
  void collective(const std::string& what, Start&& start) {
    const uint64_t k = ++seq_;
    if (hang_.first == rank_ && hang_.second == k)
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    if (exit_.first == rank_ && exit_.second == k) std::_Exit(3);
    // Check-ins: ranks > 0 tell rank 0 they reached collective k.
    std::vector<MPI_Request> in;
    std::vector<uint64_t> got;
    MPI_Request out = MPI_REQUEST_NULL;
    if (rank_ == 0) {
      in.assign(size_t(size_), MPI_REQUEST_NULL);
      got.assign(size_t(size_), 0);
      for (int r = 1; r < size_; ++r)
        MPI_Irecv(&got[size_t(r)], 1, MPI_UINT64_T, r, kCheckinTag, MPI_COMM_WORLD, &in[size_t(r)]);
    } else {
      sent_ = k;
      MPI_Isend(&sent_, 1, MPI_UINT64_T, 0, kCheckinTag, MPI_COMM_WORLD, &out);
    }
    MPI_Request req = MPI_REQUEST_NULL;
    start(&req);
    // Rank 0 gives up first; the others a grace period later (then rank 0 is the one missing).
    const double limit = rank_ == 0 ? timeout_s_ : timeout_s_ + std::max(5.0, 0.25 * timeout_s_);
    const auto t0 = std::chrono::steady_clock::now();
    int done = 0;
    for (long polls = 0;; ++polls) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (done) break;
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (waited > limit) timed_out(what, k, waited, in);
      // Spin briefly (a step's all-reduce is short), then poll every 50 microseconds.
      if (polls > 2000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (rank_ == 0) MPI_Waitall(int(in.size()), in.data(), MPI_STATUSES_IGNORE);
    else MPI_Wait(&out, MPI_STATUS_IGNORE);
  }

  [[noreturn]] void timed_out(const std::string& what, uint64_t k, double waited, std::vector<MPI_Request>& in) {
    std::ostringstream m;
    m << "error: waited " << std::fixed << std::setprecision(0) << waited << " s (runtime.dist_timeout_s "
      << timeout_s_ << ") at " << what << " (collective #" << k << "): ";
    if (rank_ == 0) {
      std::string missing;
      for (int r = 1; r < size_; ++r) {
        int arrived = 0;
        MPI_Test(&in[size_t(r)], &arrived, MPI_STATUS_IGNORE);
        if (!arrived) missing += cat(missing.empty() ? "" : ", ", r);
      }
      if (missing.empty()) m << "every rank checked in, but the collective did not complete (a network fault?)";
      else m << "rank " << missing << " did not arrive (hung, or far slower than the others)";
    } else {
      m << "rank 0 did not arrive (hung, or far slower than the others)";
    }
    m << "; ending the job";
    end_job(m.str(), 1);
  }

  int rank_ = 0, size_ = 1;
  double timeout_s_ = 300;
  uint64_t seq_ = 0, sent_ = 0;
  std::pair<int, uint64_t> hang_, exit_;
};

std::unique_ptr<MpiComm> g_world;

}  // namespace

void mpi_start(int& argc, char**& argv) {
  if (!launched_by_mpirun()) return;
  int provided = 0;
  // OpenMP threads compute; only the main thread calls MPI.
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  g_world = std::make_unique<MpiComm>();
}

dist::Comm* mpi_world() { return g_world.get(); }

void mpi_set_timeout(double seconds) {
  if (g_world) g_world->set_timeout(seconds);
}

void mpi_abort(const std::string& message, int code) {
  if (g_world && g_world->size() > 1) g_world->end_job(message, code);
  std::cerr << message << "\n";
  std::exit(code);
}

void mpi_finish() {
  if (g_world) {
    g_world.reset();
    MPI_Finalize();
  }
}

}  // namespace recdistill::app
