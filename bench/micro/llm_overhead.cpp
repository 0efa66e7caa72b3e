// What the LLM client itself costs (docs/BENCHMARKS.md, "LLM client overhead"), against the
// tests' fake OpenAI-compatible server on the loopback interface:
//   1. importing data/alkdrec-ml's 4,992 recorded answers into a cache, and opening that cache;
//   2. batches of instant replies (client, HTTP and cache cost per request), with and without
//      the cache (each cached request costs a claim and an answer record, each with fsync);
//   3. a fully cached rerun (what resuming costs);
//   4. batches of replies that take 50 ms (a stand-in for an LLM's latency) at concurrency 1
//      and 16.
// A plain program: bench/micro/llm_overhead [source dir] [scratch dir].
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "../../tests/common/fake_llm_server.hpp"
#include "recdistill/llm/llm.hpp"

using namespace recdistill;
namespace fs = std::filesystem;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<llm::Request> requests(const llm::LlmConfig& c, int n, const std::string& tag) {
  std::vector<llm::Request> r;
  for (int i = 0; i < n; ++i) r.push_back(llm::chat_request(c, "bench", "t1", {{"user", tag + std::to_string(i)}}));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  ::setenv("no_proxy", "127.0.0.1", 1);
  const std::string src = argc > 1 ? argv[1] : ".";
  const fs::path dir = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "recdistill_llm_bench";
  fs::remove_all(dir);
  fs::create_directories(dir);

  // 1. Recorded answers.
  {
    const std::string path = src + "/data/alkdrec-ml/llm_answers.jsonl";
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    double t = now();
    const auto recs = llm::parse_recorded_answers(ss.str(), path, {"rank", "rec", "gpt-4", ""}, "session_id", "session:");
    llm::AnswerCache cache((dir / "recorded.jsonl").string());
    cache.add_recorded(recs);
    const double import_s = now() - t;
    t = now();
    llm::AnswerCache again((dir / "recorded.jsonl").string());
    const double open_s = now() - t;
    std::cout << "recorded answers: import of " << recs.size() << " in " << import_s * 1e3 << " ms; opening the cache ("
              << fs::file_size(dir / "recorded.jsonl") << " bytes) " << open_s * 1e3 << " ms\n";
  }

  // 2-3. Instant replies.
  test::FakeLlmServer instant([](const test::FakeRequest& rq, size_t) {
    return test::FakeReply{200, test::chat_reply_body("ok " + std::to_string(rq.body.size()))};
  });
  for (int conc : {1, 4}) {
    for (bool cached : {false, true}) {
      llm::LlmConfig c;
      c.base_url = instant.base_url();
      c.model = "m";
      c.concurrency = conc;
      c.cache = (dir / ("c" + std::to_string(conc) + ".jsonl")).string();
      const int n = 2000;
      const auto reqs = requests(c, n, cached ? "c" : "n");
      std::unique_ptr<llm::AnswerCache> cache;
      if (cached) cache = std::make_unique<llm::AnswerCache>(c.cache);
      const double t = now();
      const auto rep = llm::Client(c).run(reqs, cache.get());
      const double s = now() - t;
      std::cout << "instant replies, concurrency " << conc << (cached ? ", cached" : ", no cache") << ": " << rep.answered
                << " requests in " << s << " s = " << n / s << " requests/s (" << s / n * 1e6 << " us each)\n";
      if (cached) {
        llm::AnswerCache reopened(c.cache);
        const double t2 = now();
        const auto rep2 = llm::Client(c).run(reqs, &reopened);
        const double s2 = now() - t2;
        std::cout << "  rerun, all cached: " << rep2.cached << " in " << s2 << " s = " << n / s2 << " requests/s\n";
      }
    }
  }
  instant.stop();

  // 4. 50 ms replies.
  test::FakeLlmServer slow([](const test::FakeRequest&, size_t) {
    test::FakeReply r{200, test::chat_reply_body("ok")};
    r.delay_s = 0.05;
    return r;
  });
  for (int conc : {1, 16}) {
    llm::LlmConfig c;
    c.base_url = slow.base_url();
    c.model = "m";
    c.concurrency = conc;
    c.cache = (dir / ("slow" + std::to_string(conc) + ".jsonl")).string();
    const int n = conc == 1 ? 100 : 400;
    llm::AnswerCache cache(c.cache);
    const double t = now();
    const auto rep = llm::Client(c).run(requests(c, n, "s"), &cache);
    const double s = now() - t;
    std::cout << "50 ms replies, concurrency " << conc << ", cached: " << rep.answered << " requests in " << s << " s = " << n / s
              << " requests/s (ideal " << conc / 0.05 << ")\n";
  }
  return 0;
}
