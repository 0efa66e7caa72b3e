// apps/mpi_world.cpp: dist::Comm on MPI (OpenMPI), with a deadline on every collective.
//
// Before each collective every rank but 0 sends rank 0 a check-in (the collective's sequence
// number) and waits for rank 0's release; rank 0 releases them once all have checked in. Those
// waits are polled against runtime.dist_timeout_s: when rank 0's deadline passes it names the
// ranks whose check-in is missing and ends the job (MPI_Abort); the other ranks wait a grace
// period longer, and if theirs passes, rank 0 itself never arrived. The collective then runs as
// a plain blocking MPI call with every rank present. A rank that exits or is killed ends the
// job through mpirun, which names the rank. The check-in also catches ranks that reached
// different collectives (a bug) instead of mixing their buffers.
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
#include "recdistill/io/container.hpp"

namespace recdistill::app {
namespace {

constexpr int kCheckinTag = 7301, kReleaseTag = 7302;

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
    collective(what, n * 4 + 0, [&] { MPI_Allreduce(MPI_IN_PLACE, x, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); });
  }
  void allreduce_sum(float* x, size_t n, const std::string& what) override {
    check_count(n, what);
    collective(what, n * 4 + 1, [&] { MPI_Allreduce(MPI_IN_PLACE, x, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); });
  }
  std::vector<int64_t> allgather(const std::vector<int64_t>& x, const std::string& what) override {
    check_count(x.size(), what);
    std::vector<int> counts(size_t(size_), 0), offsets(size_t(size_), 0);
    const int mine = int(x.size());
    collective(cat(what, " (counts)"), 2, [&] { MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD); });
    int64_t total = 0;
    for (int i = 0; i < size_; ++i) {
      offsets[size_t(i)] = int(total);
      total += counts[size_t(i)];
    }
    if (total > INT32_MAX) fail(what, ": ", total, " values exceed one MPI message");
    std::vector<int64_t> out(static_cast<size_t>(total));
    collective(what, 3, [&] {  // the counts differ by rank: gathered just before
      MPI_Allgatherv(x.data(), mine, MPI_INT64_T, out.data(), counts.data(), offsets.data(), MPI_INT64_T, MPI_COMM_WORLD);
    });
    return out;
  }
  std::string broadcast(const std::string& text, const std::string& what) override {
    check_count(text.size(), what);
    uint64_t n = rank_ == 0 ? text.size() : 0;
    collective(cat(what, " (length)"), 3, [&] { MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD); });
    std::string out = rank_ == 0 ? text : std::string(size_t(n), '\0');
    if (n > INT32_MAX) fail(what, ": ", n, " bytes exceed one MPI message");
    collective(what, n * 4 + 3, [&] { MPI_Bcast(out.data(), int(n), MPI_CHAR, 0, MPI_COMM_WORLD); });
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

  // Runs one blocking collective `run` once every rank has reached it: the gate (check-ins to
  // rank 0, then rank 0's release) is where ranks wait for each other, polled against the
  // deadline, so the collective itself (the tuned blocking algorithm, about 3x faster than the
  // non-blocking one for a 4 MB gradient here) starts with every rank present.
  // `shape` (the element count and type) joins the check-in's hash: ranks at the same collective
  // with different counts are caught too.
  template <class Run>
  void collective(const std::string& what, uint64_t shape, Run&& run) {
    const uint64_t k = ++seq_;
    if (hang_.first == rank_ && hang_.second == k)
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    if (exit_.first == rank_ && exit_.second == k) std::_Exit(3);
    gate(what, k, shape);
    run();
  }

  // Every rank sends {k, hash of what} so that ranks at different collectives are caught.
  void gate(const std::string& what, uint64_t k, uint64_t shape) {
    const auto t0 = std::chrono::steady_clock::now();
    // Rank 0 gives up first; the others a grace period later (then rank 0 is the one missing).
    const double limit = rank_ == 0 ? timeout_s_ : timeout_s_ + std::max(5.0, 0.25 * timeout_s_);
    const uint64_t h = io::fnv1a64_bytes(&shape, sizeof shape, io::fnv1a64(what));
    std::vector<MPI_Request> reqs;
    std::vector<uint64_t> buf(2 * size_t(size_), 0);  // rank r's {k, h} at 2r
    buf[0] = k;
    buf[1] = h;
    if (rank_ == 0) {
      reqs.assign(size_t(size_), MPI_REQUEST_NULL);
      for (int r = 1; r < size_; ++r)
        MPI_Irecv(&buf[2 * size_t(r)], 2, MPI_UINT64_T, r, kCheckinTag, MPI_COMM_WORLD, &reqs[size_t(r)]);
      wait_all(reqs, what, k, t0, limit);
      for (int r = 1; r < size_; ++r)
        if (buf[2 * size_t(r)] != k || buf[2 * size_t(r) + 1] != h)
          end_job(cat("error: rank ", r, " reached collective #", buf[2 * size_t(r)], " while rank 0 reached #", k,
                      " (", what, "), or another collective of that number: the ranks run different collectives "
                      "(a bug: please report it)"), 1);
      for (int r = 1; r < size_; ++r)
        MPI_Isend(&buf[0], 1, MPI_UINT64_T, r, kReleaseTag, MPI_COMM_WORLD, &reqs[size_t(r)]);
      MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);  // released ranks are receiving
    } else {
      reqs.assign(2, MPI_REQUEST_NULL);
      MPI_Isend(&buf[0], 2, MPI_UINT64_T, 0, kCheckinTag, MPI_COMM_WORLD, &reqs[0]);
      MPI_Irecv(&buf[2], 1, MPI_UINT64_T, 0, kReleaseTag, MPI_COMM_WORLD, &reqs[1]);
      wait_all(reqs, what, k, t0, limit);
    }
  }

  // Polls `reqs` to completion, or ends the job once `limit` seconds have passed since t0.
  void wait_all(std::vector<MPI_Request>& reqs, const std::string& what, uint64_t k,
                std::chrono::steady_clock::time_point t0, double limit) {
    int done = 0;
    for (long polls = 0;; ++polls) {
      MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
      if (done) return;
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (waited > limit) timed_out(what, k, waited, reqs);
      // Spin briefly (the ranks of a step arrive close together), then poll every 50 microseconds,
      // and every 10 ms after a second (the end of an experiment waits for the others' runs).
      if (polls > 2000) std::this_thread::sleep_for(std::chrono::microseconds(waited > 1.0 ? 10000 : 50));
    }
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
      if (missing.empty()) m << "every rank arrived just now (far slower than the others)";
      else m << "rank " << missing << " did not arrive (hung, or far slower than the others)";
    } else {
      m << "rank 0 did not release this rank (rank 0, or a rank it waits for, did not arrive)";
    }
    m << "; ending the job";
    end_job(m.str(), 1);
  }

  int rank_ = 0, size_ = 1;
  double timeout_s_ = 300;
  uint64_t seq_ = 0;
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
