// Import speed (docs/BENCHMARKS.md, "Data import speed"): rows per second of each importer
// on generated files.
//
//   import_bench [--rows N] [--dir DIR] [--repeats R]
//
// Writes one file per format into DIR (default /tmp/recdistill_import_bench; not cleaned up,
// so reruns reuse them) with N interaction rows (default 2,000,000): 1 user per 20 rows,
// 1 item per 50 rows, uniform draws. Then times each importer R times (default 5; the first
// run also warms the page cache and is included) and prints min / median / max rows per
// second and MB per second. The timed call is the whole import: reading the file, parsing,
// interning ids and counting duplicates.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "recdistill/data/amazon.hpp"
#include "recdistill/data/atomic.hpp"
#include "recdistill/data/csv.hpp"
#include "recdistill/data/sessions.hpp"

namespace fs = std::filesystem;
using namespace recdistill;

namespace {

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

struct Gen {
  std::mt19937_64 g{42};
  size_t users, items;
  explicit Gen(size_t rows) : users(std::max<size_t>(1, rows / 20)), items(std::max<size_t>(1, rows / 50)) {}
  size_t user() { return g() % users; }
  size_t item() { return g() % items; }
  long time() { return 880000000 + long(g() % 100000000); }
  int rating() { return 1 + int(g() % 5); }
};

void generate(const fs::path& dir, size_t rows) {
  fs::create_directories(dir);
  if (fs::exists(dir / "done") && std::to_string(rows) == [&] {
        std::ifstream f(dir / "done");
        std::string s;
        f >> s;
        return s;
      }())
    return;
  std::string inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";
  std::string csv = "user_id,item_id,timestamp,rating\n";
  std::string amazon;
  Gen g(rows);
  char buf[512];
  for (size_t r = 0; r < rows; ++r) {
    const size_t u = g.user(), i = g.item();
    const long t = g.time();
    const int s = g.rating();
    std::snprintf(buf, sizeof buf, "%zu\t%zu\t%d\t%ld\n", u, i, s, t);
    inter += buf;
    std::snprintf(buf, sizeof buf, "u%zu,i%zu,%ld,%d\n", u, i, t, s);
    csv += buf;
    // An Amazon 2018 review line with the usual keys and a short review text.
    std::snprintf(buf, sizeof buf,
                  "{\"overall\": %d.0, \"verified\": true, \"reviewTime\": \"01 1, 2018\", "
                  "\"reviewerID\": \"A%zuXQ\", \"asin\": \"B%08zu\", \"reviewerName\": \"Reader\", "
                  "\"reviewText\": \"Good product, works as described. Would buy again.\", "
                  "\"summary\": \"Five Stars\", \"unixReviewTime\": %ld}\n",
                  s, u, i, t);
    amazon += buf;
  }
  write(dir / "bench.inter", inter);
  write(dir / "interactions.csv", csv);
  write(dir / "reviews.jsonl", amazon);
  // Sessions: 4-18 items + target each (alkdrec-ml shape), until `rows` interactions.
  std::string items = "item_index\traw_item_id\ttitle\n";
  for (size_t i = 0; i < g.items; ++i) items += std::to_string(i) + "\t" + std::to_string(i + 1) + "\tMovie " + std::to_string(i) + "\n";
  std::string sessions = "session_id\tsplit\titems\ttarget\n";
  size_t n = 0, sid = 0;
  while (n < rows) {
    const size_t len = 4 + g.g() % 15;
    std::string line = std::to_string(sid++) + "\ttrain\t";
    for (size_t k = 0; k < len; ++k) line += (k ? " " : "") + std::to_string(g.item());
    line += "\t" + std::to_string(g.item()) + "\n";
    sessions += line;
    n += len + 1;
  }
  write(dir / "items.tsv", items);
  write(dir / "sessions.tsv", sessions);
  write(dir / "done", std::to_string(rows));
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Prints wall-clock rows/s (min / median / max over the repeats) and, because the machine may
// be shared, rows per second of this process's CPU time (median), which other load does not
// inflate as much.
void time_one(const char* name, const fs::path& file, int repeats, const std::function<size_t()>& run) {
  std::vector<double> secs, cpu;
  size_t rows = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    rows = run();
    cpu.push_back(cpu_seconds() - c0);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(secs.begin(), secs.end());
  std::sort(cpu.begin(), cpu.end());
  const double mb = double(fs::file_size(file)) / 1e6;
  const double med = secs[secs.size() / 2], cmed = cpu[cpu.size() / 2];
  std::printf("%-9s %8zu rows %6.1f MB | wall rows/s min %9.0f median %9.0f max %9.0f | MB/s %6.1f | CPU rows/s median %9.0f\n",
              name, rows, mb, double(rows) / secs.back(), double(rows) / med, double(rows) / secs.front(),
              mb / med, double(rows) / cmed);
}

}  // namespace

int main(int argc, char** argv) {
  size_t rows = 2000000;
  int repeats = 5;
  fs::path dir = "/tmp/recdistill_import_bench";
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string k = argv[a];
    if (k == "--rows") rows = std::stoul(argv[a + 1]);
    else if (k == "--repeats") repeats = std::stoi(argv[a + 1]);
    else if (k == "--dir") dir = argv[a + 1];
    else {
      std::cerr << "usage: import_bench [--rows N] [--dir DIR] [--repeats R]\n";
      return 2;
    }
  }
  generate(dir, rows);
  time_one("atomic", dir / "bench.inter", repeats, [&] { return data::read_atomic_inter((dir / "bench.inter").string()).size(); });
  time_one("csv", dir / "interactions.csv", repeats, [&] { return data::read_csv((dir / "interactions.csv").string()).size(); });
  time_one("amazon", dir / "reviews.jsonl", repeats, [&] { return data::read_amazon((dir / "reviews.jsonl").string()).size(); });
  time_one("sessions", dir / "sessions.tsv", repeats, [&] {
    return data::read_sessions((dir / "sessions.tsv").string(), (dir / "items.tsv").string()).size();
  });
  return 0;
}
