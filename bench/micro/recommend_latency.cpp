// Latency of `recdistill recommend`, one request at a time (docs/BENCHMARKS.md, "recommend
// latency (exported SASRec, ml-100k)"); a plain program.
//
//   recommend_latency --model-path DIR --plugin-dir DIR [--repeat N] [--k K] [--warmup W] [--max-users U]
//
// DIR is what `recdistill export` writes (model.safetensors + config.yaml). The program does
// what `recdistill recommend` does, through the same plugin edge: opens the plugin registry,
// builds the config layers from DIR/config.yaml, checks them against the app's keys and the
// model's (as the app's load_configs does), creates the model by name, loads the data the
// config names (data::load_prepared_or_import, as the app's prepare_data does) and then
// model->load(weights, data). None of that is timed per request.
//
// A request is one user: model->recommend({history}, k, {history}) with history = the user's
// whole sequence (data::to_sequences, as cmd_recommend), so the history is excluded from the
// result and the whole catalogue is scored. After W warm-up requests (default 50, users taken
// in order), every user with a non-empty sequence is requested once per repeat (default 1),
// in user-id order, each call timed alone with std::chrono::steady_clock. --max-users U keeps
// only the first U users (for profiling).
//
// Prints one JSON line (prefixed by nothing) and one human line: requests, p50 / p90 / p99 /
// max / mean latency in ms, the peak RSS of the process (getrusage ru_maxrss), the resident
// set (/proc/self/statm) at each stage, and the weights file's size. For comparison it then
// times all users in one recommend() call (not counted as requests; its own peak RSS). Set OMP_NUM_THREADS=1:
// the config's runtime.threads (1 by default) sets the count when the model is created, and the
// program refuses a config with another count.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/data/prepared.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/config_schema.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/plugin/registry.hpp"

namespace fs = std::filesystem;
using namespace recdistill;
using Clock = std::chrono::steady_clock;

namespace {

// Resident set size now, in MiB (/proc/self/statm: pages).
double rss_mib() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Peak resident set size of the process so far, in MiB (ru_maxrss is in KiB on Linux).
double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The q-quantile (0..1) of sorted values, nearest rank (the value at ceil(q n) - 1).
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = size_t(std::ceil(q * double(sorted.size())));
  i = std::clamp<size_t>(i, 1, sorted.size()) - 1;
  return sorted[i];
}

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "recommend_latency: " << why << "\n"
            << "usage: recommend_latency --model-path DIR --plugin-dir DIR [--repeat N] [--k K] [--warmup W] [--max-users U]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string model_dir, plugin_dir;
  int repeat = 1, k = 10, warmup = 50, max_users = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--model-path") model_dir = value();
    else if (a == "--plugin-dir") plugin_dir = value();
    else if (a == "--repeat") repeat = std::stoi(value());
    else if (a == "--k") k = std::stoi(value());
    else if (a == "--warmup") warmup = std::stoi(value());
    else if (a == "--max-users") max_users = std::stoi(value());
    else if (a == "--help" || a == "-h") usage("help");
    else usage("unknown argument '" + a + "'");
  }
  if (model_dir.empty() || plugin_dir.empty()) usage("--model-path and --plugin-dir are required");
  if (repeat < 1 || k < 1 || warmup < 0) usage("--repeat and --k must be positive, --warmup not negative");
  const fs::path weights = fs::path(model_dir) / "model.safetensors";
  const fs::path config = fs::path(model_dir) / "config.yaml";
  if (!fs::exists(weights) || !fs::exists(config)) usage(model_dir + ": expected model.safetensors and config.yaml");
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (!omp || std::string(omp) != "1")
    std::cerr << "warning: OMP_NUM_THREADS is " << (omp ? omp : "unset") << "; set OMP_NUM_THREADS=1\n";

  const double rss_start = rss_mib();
  auto t0 = Clock::now();

  // The plugins: only --plugin-dir (and RECDISTILL_PLUGIN_PATH), as the app with --plugin-dir.
  plugin::SearchOptions so;
  so.dirs = {plugin_dir};
  const plugin::Registry registry(so);
  for (const auto& r : registry.refused())
    std::cerr << "warning: plugin refused: " << r.file.string() << ": " << r.reason << "\n";

  // The config, as the app's load_configs(files = {config}, sets = {}, registry): the app's keys
  // first (quietly) for the model's name, then every key checked against the app's and the
  // model's keys together.
  const io::ConfigLayers layers = io::config_layers({config.string()}, {});
  const io::RawConfig raw = io::read_layers(layers);
  const auto app_schema = io::schema_of<io::CommonConfig>();
  io::ResolveOptions quiet;
  quiet.strict = false;
  quiet.warn = false;
  const auto first = io::bind_config<io::CommonConfig>(io::resolve(app_schema, raw, quiet));
  io::Schema schema = app_schema;
  const auto* model_keys = registry.model_keys(first.model_name);
  if (!model_keys) registry.create_model(first.model_name, layers);  // fails, naming the folders searched
  schema.add(*model_keys);
  const io::CommonConfig cfg = io::bind_config<io::CommonConfig>(io::resolve(schema, raw, io::ResolveOptions{}));
  if (cfg.runtime.threads != 1) usage("runtime.threads is " + std::to_string(cfg.runtime.threads) + " in " +
                                      config.string() + "; this benchmark is for one thread");
  auto model = registry.create_model(cfg.model_name, layers);  // sets the thread count
  const double plugin_s = seconds_since(t0);
  const double rss_plugin = rss_mib();

  // The data the config names (as the app's prepare_data).
  t0 = Clock::now();
  const data::LoadedData loaded = data::load_prepared_or_import(cfg);
  const data::Dataset& d = loaded.dataset;
  const data::UserSequences seqs = data::to_sequences(d);
  const double data_s = seconds_since(t0);
  const double rss_before_model = rss_mib();

  t0 = Clock::now();
  model->load(weights.string(), d);
  const double load_s = seconds_since(t0);
  const double rss_after_model = rss_mib();
  const double peak_after_model = peak_rss_mib();

  // One request per user with a sequence, in user-id order.
  std::vector<int32_t> users;
  for (int32_t u = 1; u < seqs.n_users; ++u)
    if (!seqs.items[size_t(u)].empty() && (max_users <= 0 || int(users.size()) < max_users)) users.push_back(u);
  if (users.empty()) usage("no user has a sequence in " + cfg.data.path);
  std::vector<std::vector<std::vector<int32_t>>> requests(users.size());
  size_t history_sum = 0;
  for (size_t i = 0; i < users.size(); ++i) {
    requests[i] = {seqs.items[size_t(users[i])]};
    history_sum += requests[i][0].size();
  }

  size_t returned = 0;
  for (int i = 0; i < warmup; ++i) {
    const auto& h = requests[size_t(i) % requests.size()];
    returned += model->recommend(h, k, h).size();
  }
  // The first user's list, as `recdistill recommend --users ID --k K` prints it (a check).
  std::ostringstream check;
  {
    const auto recs = model->recommend(requests[0], k, requests[0]);
    check << d.users.token(users[0]) << ":";
    for (size_t r = 0; r < recs[0].size(); ++r) check << (r ? "," : "") << d.items.token(recs[0][r].item);
  }

  std::vector<double> ms;
  ms.reserve(users.size() * size_t(repeat));
  const auto run_t0 = Clock::now();
  for (int rep = 0; rep < repeat; ++rep)
    for (const auto& h : requests) {
      const auto a = Clock::now();
      const auto recs = model->recommend(h, k, h);
      const auto b = Clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(b - a).count());
      returned += recs.size() == 1 && recs[0].size() == size_t(k);
    }
  const double run_s = seconds_since(run_t0);
  const double rss_end = rss_mib();
  const double peak_end = peak_rss_mib();

  // For comparison, not a request: all users in one recommend() call (as `recdistill recommend
  // --users-file` with every user does), 3 times; the fastest, per user. Measured after the
  // peak RSS above was read, so that peak covers single requests only.
  std::vector<std::vector<int32_t>> all;
  for (const auto& r : requests) all.push_back(r[0]);
  double batch_s = 1e300;
  for (int r = 0; r < 3; ++r) {
    const auto a = Clock::now();
    const auto recs = model->recommend(all, k, all);
    batch_s = std::min(batch_s, seconds_since(a));
    if (recs.size() != all.size()) usage("the batched call returned the wrong number of lists");
  }
  const double peak_batch = peak_rss_mib();

  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
  const double p50 = quantile(sorted, 0.50), p90 = quantile(sorted, 0.90), p99 = quantile(sorted, 0.99);
  const double mx = sorted.back(), mn = sorted.front();
  const size_t full_lists = returned - size_t(warmup);  // requests that returned k items
  const auto weights_bytes = fs::file_size(weights);

  std::ostringstream js;
  js << std::setprecision(6) << "{\"bench\": \"recommend_latency\", \"model_path\": " << io::json_quote(model_dir)
     << ", \"model\": " << io::json_quote(cfg.model_name) << ", \"summary\": " << io::json_quote(model->summary())
     << ", \"data\": " << io::json_quote(loaded.source) << ", \"users\": " << users.size()
     << ", \"items\": " << seqs.n_items - 1 << ", \"mean_history\": " << double(history_sum) / double(users.size())
     << ", \"k\": " << k << ", \"threads\": " << cfg.runtime.threads
     << ", \"omp_num_threads\": " << io::json_quote(omp ? omp : "") << ", \"warmup\": " << warmup
     << ", \"repeat\": " << repeat << ", \"requests\": " << ms.size() << ", \"full_lists\": " << full_lists
     << ", \"latency_ms\": {\"p50\": " << p50 << ", \"p90\": " << p90 << ", \"p99\": " << p99 << ", \"max\": " << mx
     << ", \"min\": " << mn << ", \"mean\": " << mean << "}, \"requests_per_s\": " << double(ms.size()) / run_s
     << ", \"batched_all_users\": {\"users\": " << all.size() << ", \"fastest_of_3_s\": " << batch_s
     << ", \"ms_per_user\": " << 1e3 * batch_s / double(all.size()) << ", \"peak_rss_mib_after\": " << peak_batch << "}"
     << ", \"weights_bytes\": " << weights_bytes << ", \"rss_mib\": {\"start\": " << rss_start
     << ", \"after_plugin_and_config\": " << rss_plugin << ", \"after_data\": " << rss_before_model
     << ", \"after_model_load\": " << rss_after_model << ", \"model_load_delta\": " << rss_after_model - rss_before_model
     << ", \"after_requests\": " << rss_end << "}, \"peak_rss_mib\": {\"after_model_load\": " << peak_after_model
     << ", \"end\": " << peak_end << "}, \"setup_s\": {\"plugin_and_config\": " << plugin_s << ", \"data\": " << data_s
     << ", \"model_load\": " << load_s << "}, \"check_top\": " << io::json_quote(check.str()) << "}";
  std::cout << js.str() << "\n";
  std::cout << std::fixed << std::setprecision(3) << "recommend latency: " << ms.size() << " requests (" << users.size()
            << " users x " << repeat << ", top-" << k << ", 1 thread): p50 " << p50 << " ms, p90 " << p90 << " ms, p99 "
            << p99 << " ms, max " << mx << " ms, mean " << mean << " ms; RSS " << std::setprecision(1) << rss_before_model
            << " -> " << rss_after_model << " MiB by the model load (+" << rss_after_model - rss_before_model
            << "), " << rss_end << " MiB after the requests, peak " << peak_end << " MiB; weights "
            << std::setprecision(3) << double(weights_bytes) / (1024.0 * 1024.0) << " MiB; all "
            << all.size() << " users in one call: " << 1e3 * batch_s / double(all.size()) << " ms per user\n";
  if (full_lists != ms.size()) {
    std::cerr << "error: " << ms.size() - full_lists << " requests did not return " << k << " items\n";
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "recommend_latency: " << e.what() << "\n";
  return 1;
}
