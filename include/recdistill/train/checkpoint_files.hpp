// recdistill/train/checkpoint_files.hpp: a run folder's latest.ckpt and best.ckpt, committed
// together, so that a kill at any moment leaves a pair that agrees (the best epoch recorded in
// latest.ckpt is the epoch of best.ckpt).
//
// Two files cannot be replaced by one atomic rename, so they live in a generation folder and a
// link names the committed one:
//   RUN/ckpt.<n>/latest.ckpt, RUN/ckpt.<n>/best.ckpt   generation n (files never change once written)
//   RUN/checkpoints -> ckpt.<n>                         the committed generation
//   RUN/latest.ckpt -> checkpoints/latest.ckpt          the names users and tools open
//   RUN/best.ckpt   -> checkpoints/best.ckpt
// A commit writes and syncs generation n + 1 (best.ckpt is a hard link to generation n's when
// validation did not improve), then renames a new `checkpoints` link over the old one: that
// rename is the only commit point. Earlier and unfinished generations are removed after a
// commit and when the folder is opened again. docs/checkpoints.md describes the files.
//
// Fault injection (tests only): RECDISTILL_FAULT_CHECKPOINT=<phase>:<epoch> SIGKILLs the process
// during the commit of that epoch, at phase mid_latest (half of latest.ckpt written), between
// (latest.ckpt written, best.ckpt not yet) or mid_best (half of best.ckpt written; only on an
// epoch whose validation improved). It prints "fault injection: <phase> at epoch <epoch>" to
// stderr first, so a test can prove where the kill landed.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "recdistill/core/error.hpp"
#include "recdistill/io/container.hpp"

namespace recdistill {

inline constexpr const char* kLatestCheckpoint = "latest.ckpt";
inline constexpr const char* kBestCheckpoint = "best.ckpt";

class CheckpointFiles {
 public:
  static constexpr const char* kLatest = kLatestCheckpoint;
  static constexpr const char* kBest = kBestCheckpoint;
  static constexpr const char* kLink = "checkpoints";  // -> the committed generation folder

  // Opens (creating) a run folder: removes unfinished generations and stale temporary files,
  // and turns a folder written by an older build (plain latest.ckpt and best.ckpt) into
  // generation 0 without changing what either name reads.
  explicit CheckpointFiles(std::filesystem::path dir) : dir_(std::move(dir)) {
    namespace fs = std::filesystem;
    fs::create_directories(dir_);
    const fs::path latest = dir_ / kLatest, best = dir_ / kBest;
    if (!fs::is_symlink(dir_ / kLink) && fs::is_regular_file(latest) && !fs::is_symlink(latest)) {
      const fs::path g = dir_ / gen_name(0);
      fs::remove_all(g);
      fs::create_directory(g);
      fs::create_hard_link(latest, g / kLatest);
      if (fs::is_regular_file(best)) fs::create_hard_link(best, g / kBest);
      sync_dir(g);
      relink(kLink, gen_name(0));
    }
    committed_ = committed_generation();
    link_names();  // before any commit, so a committed pair always has its names
    remove_other_generations();
  }

  // Whether the folder holds a committed pair.
  bool has_committed() const { return committed_ >= 0; }
  bool has_best() const { return committed_ >= 0 && std::filesystem::exists(gen_dir(committed_) / kBest); }

  // Commits the checkpoint of `epoch` (`latest`: the whole file's bytes) as latest.ckpt and
  // `best` as best.ckpt; best == nullptr keeps the committed best.ckpt (the folder must have one).
  void commit(int epoch, const std::string& latest, const std::string* best) {
    namespace fs = std::filesystem;
    RD_REQUIRE(best || has_best(), "CheckpointFiles::commit: no best.ckpt to keep in ", dir_.string());
    const long n = committed_ + 1;
    const fs::path g = gen_dir(n);
    fs::remove_all(g);
    fs::create_directory(g);
    const Fault f = fault(epoch);
    write_synced(g / kLatest, latest, f == Fault::mid_latest, epoch);
    if (f == Fault::between) die("between", epoch);
    if (best) {
      write_synced(g / kBest, *best, f == Fault::mid_best, epoch);
    } else {
      std::error_code ec;  // a file system without hard links gets a copy
      fs::create_hard_link(gen_dir(committed_) / kBest, g / kBest, ec);
      if (ec) write_synced(g / kBest, io::read_file_bytes((gen_dir(committed_) / kBest).string()), false, epoch);
    }
    sync_dir(g);
    relink(kLink, gen_name(n));  // the commit
    committed_ = n;
    remove_other_generations();
  }

 private:
  static std::string gen_name(long n) { return "ckpt." + std::to_string(n); }
  std::filesystem::path gen_dir(long n) const { return dir_ / gen_name(n); }

  // The generation `checkpoints` names, or -1.
  long committed_generation() const {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(dir_ / kLink, ec);
    if (ec) return -1;
    const std::string t = target.string();
    if (t.rfind("ckpt.", 0) != 0) fail(dir_.string(), "/", kLink, ": expected a link to ckpt.<n>, found '", t, "'");
    long n = -1;
    try {
      n = std::stol(t.substr(5));
    } catch (...) {
      fail(dir_.string(), "/", kLink, ": expected a link to ckpt.<n>, found '", t, "'");
    }
    if (!std::filesystem::is_regular_file(gen_dir(n) / kLatest))
      fail(dir_.string(), "/", kLink, ": names ", t, ", which has no ", kLatest);
    return n;
  }

  // RUN/latest.ckpt and RUN/best.ckpt as links through `checkpoints` (made once; dangling
  // until the first commit).
  void link_names() {
    for (const char* name : {kLatest, kBest}) {
      const std::string want = std::string(kLink) + "/" + name;
      std::error_code ec;
      if (std::filesystem::read_symlink(dir_ / name, ec).string() != want) relink(name, want);
    }
  }

  // Points dir_/name at target with one rename over whatever is there (a link or a file).
  void relink(const std::string& name, const std::string& target) {
    const std::string tmp = (dir_ / (name + ".tmp." + std::to_string(::getpid()))).string();
    ::unlink(tmp.c_str());
    if (::symlink(target.c_str(), tmp.c_str()) != 0)
      fail(tmp, ": cannot create a link to ", target, ": ", std::strerror(errno));
    if (std::rename(tmp.c_str(), (dir_ / name).c_str()) != 0) {
      const int e = errno;
      ::unlink(tmp.c_str());
      fail((dir_ / name).string(), ": rename from ", tmp, " failed: ", std::strerror(e));
    }
    sync_dir(dir_);
  }

  void remove_other_generations() {
    namespace fs = std::filesystem;
    const std::string keep = gen_name(committed_);
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      const bool stale_gen = name.size() > 5 && name.rfind("ckpt.", 0) == 0 &&
                             name.find_first_not_of("0123456789", 5) == std::string::npos && name != keep &&
                             e.is_directory() && !e.is_symlink();
      const bool stale_tmp = name.find(".tmp.") != std::string::npos &&
                             (name.rfind(kLink, 0) == 0 || name.rfind(kLatest, 0) == 0 || name.rfind(kBest, 0) == 0);
      if (stale_gen || stale_tmp) fs::remove_all(e.path());
    }
  }

  enum class Fault { none, mid_latest, between, mid_best };
  static Fault fault(int epoch) {
    const char* v = std::getenv("RECDISTILL_FAULT_CHECKPOINT");
    if (!v || epoch < 0) return Fault::none;
    const std::string s(v);
    const size_t colon = s.find(':');
    if (colon == std::string::npos || std::atoi(s.c_str() + colon + 1) != epoch) return Fault::none;
    const std::string phase = s.substr(0, colon);
    if (phase == "mid_latest") return Fault::mid_latest;
    if (phase == "between") return Fault::between;
    if (phase == "mid_best") return Fault::mid_best;
    fail("RECDISTILL_FAULT_CHECKPOINT: expected mid_latest, between or mid_best before ':', found '", phase, "'");
  }
  [[noreturn]] static void die(const char* phase, int epoch) {
    std::fprintf(stderr, "fault injection: %s at epoch %d\n", phase, epoch);
    std::fflush(stderr);
    ::raise(SIGKILL);
    std::abort();
  }

  // Writes bytes to a new file and syncs it (half of them, then dies, under fault injection).
  static void write_synced(const std::filesystem::path& path, const std::string& bytes, bool half, int epoch) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) fail(path.string(), ": cannot create: ", std::strerror(errno));
    const size_t n = half ? bytes.size() / 2 : bytes.size();
    size_t done = 0;
    while (done < n) {
      const ssize_t w = ::write(fd, bytes.data() + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        const int e = errno;
        ::close(fd);
        fail(path.string(), ": write failed: ", std::strerror(e));
      }
      done += size_t(w);
    }
    if (half) {
      ::fsync(fd);
      die(path.filename() == kLatest ? "mid_latest" : "mid_best", epoch);
    }
    const int synced = ::fsync(fd);
    const int sync_errno = errno;
    if (::close(fd) != 0 || synced != 0)
      fail(path.string(), ": ", synced != 0 ? "fsync" : "close", " failed: ", std::strerror(synced != 0 ? sync_errno : errno));
  }

  static void sync_dir(const std::filesystem::path& d) {
    const int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      ::fsync(dfd);  // best effort: some file systems refuse fsync on a folder
      ::close(dfd);
    }
  }

  std::filesystem::path dir_;
  long committed_ = -1;
};

}  // namespace recdistill
