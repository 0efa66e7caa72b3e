// LLM-written user profiles (llm/profiles.hpp, `recdistill profiles`) against the fake
// OpenAI-compatible server on the loopback interface: prompts hold training items only (planted
// held-out titles and a held-out rating never reach a request), a long history is split into
// parts and merged, failed and unparseable answers leave a user without a profile, a rerun is
// served from the cache, and the output loads through the profile loader (data/profiles.hpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common/fake_llm_server.hpp"
#include "recdistill/data/atomic.hpp"
#include "recdistill/data/profiles.hpp"
#include "recdistill/data/split.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/llm/llm.hpp"
#include "recdistill/llm/profiles.hpp"

extern char** environ;

namespace recdistill {
namespace {

namespace fs = std::filesystem;
using test::FakeLlmServer;
using test::FakeReply;
using test::FakeRequest;

const std::string kFixtures = std::string(RECDISTILL_FIXTURE_DIR) + "/llm_profiles";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("recdistill_llm_profiles_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// tiny.inter: u1 trains on Films 1-3, u2 on Films 4 (rated 2) and 5, u3 on Films 1-9. Every
// held-out item is "Secret Valid Title" or "Secret Test Title", except u2's validation item,
// which re-watches Film Four with the only rating 1 in the data.
struct Tiny {
  data::Interactions d = data::read_atomic(kFixtures + "/tiny.inter", kFixtures + "/tiny.item");
  data::Split s = data::split_loo(d);
};

llm::LlmConfig fast_config(const std::string& base_url, const fs::path& dir) {
  llm::LlmConfig c;
  c.base_url = base_url;
  c.model = "fake-chat";
  c.embedding_model = "fake-embed";
  c.api_key_env = "RECDISTILL_TEST_LLM_KEY";
  c.timeout_s = 5;
  c.max_retries = 1;
  c.backoff_initial_s = 0.01;
  c.backoff_max_s = 0.02;
  c.concurrency = 2;
  c.cache = (dir / "cache.jsonl").string();
  return c;
}

// The prompt of a chat request body.
std::string prompt_of(const std::string& body) {
  return llm::parse_batch_input("{\"id\": 1, " + body.substr(body.find("\"messages\"")), "body", false)[0].messages[0].content;
}

// Answers a profile prompt with "profile of <its first history line>", a merge prompt with
// "merged: <the part headings>", and embeddings with 8-dimensional vectors.
FakeReply profile_server(const FakeRequest& rq) {
  if (rq.path == "/v1/embeddings") {
    simdjson::dom::parser parser;
    const size_t n = parser.parse(rq.body)["input"].get_array().size();
    return {200, test::embedding_reply_body(n, 8)};
  }
  const std::string p = prompt_of(rq.body);
  if (p.rfind("Below are ", 0) == 0) return {200, test::chat_reply_body("Preferences: merged " + std::to_string(p.size()))};
  const size_t at = p.find("\n1. ");
  return {200, test::chat_reply_body("Preferences: profile of " + p.substr(at + 4, p.find('\n', at + 1) - at - 4))};
}

std::vector<std::string> chat_prompts(const FakeLlmServer& s) {
  std::vector<std::string> out;
  for (const auto& rq : s.requests())
    if (rq.path == "/v1/chat/completions") out.push_back(prompt_of(rq.body));
  return out;
}

TEST(LlmProfiles, SplitPartsHalvesRecursively) {
  using R = llm::PartRange;
  EXPECT_EQ(llm::split_parts(9, 100), (std::vector<R>{{0, 9}}));
  EXPECT_EQ(llm::split_parts(9, 9), (std::vector<R>{{0, 9}}));
  EXPECT_EQ(llm::split_parts(9, 4), (std::vector<R>{{0, 4}, {4, 6}, {6, 9}}));
  EXPECT_EQ(llm::split_parts(10, 4), (std::vector<R>{{0, 2}, {2, 5}, {5, 7}, {7, 10}}));
  EXPECT_EQ(llm::split_parts(3, 1), (std::vector<R>{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_TRUE(llm::split_parts(0, 4).empty());
}

TEST(LlmProfiles, TrainingHistoriesCarryTheRatingsOfTrainingRowsOnly) {
  const Tiny t;
  const auto h = llm::training_histories(t.d, t.s);
  const int32_t u2 = t.d.users.find("u2");
  ASSERT_EQ(h[size_t(u2)].size(), 2u);
  EXPECT_EQ(t.d.items.token(h[size_t(u2)][0].item), "4");
  EXPECT_EQ(h[size_t(u2)][0].rating, 2.0f);  // its training row, not the held-out re-watch rated 1
  EXPECT_EQ(h[size_t(u2)][1].rating, 4.0f);
  EXPECT_EQ(h[size_t(t.d.users.find("u3"))].size(), 9u);
  const llm::ItemText items(t.d.item_meta, t.d.items);
  EXPECT_EQ(items.describe(t.d.items.find("3")), "Film Three (1993); Drama Romance");
}

TEST(LlmProfiles, PromptsHoldTrainingItemsOnlyAndLongHistoriesAreSplitThenMerged) {
  const auto dir = scratch("split");
  const Tiny t;
  FakeLlmServer server([](const FakeRequest& rq, size_t) { return profile_server(rq); });
  llm::Client client(fast_config(server.base_url(), dir));
  llm::AnswerCache cache((dir / "cache.jsonl").string());
  llm::ProfileJob job;
  job.max_items = 4;  // u3's nine items: parts of 4, 2 and 3 items
  const llm::ProfileTexts p = llm::write_profiles(client, &cache, t.d, t.s, job);
  ASSERT_TRUE(p.stop.empty()) << p.stop;
  EXPECT_EQ(p.training_users, 3);
  EXPECT_EQ(p.split_users, 1);
  EXPECT_EQ(p.part_requests, 5);  // u1, u2, and u3's three parts
  EXPECT_EQ(p.merge_requests, 1);
  const auto prompts = chat_prompts(server);
  ASSERT_EQ(prompts.size(), 6u);
  for (const auto& body : server.requests()) {
    EXPECT_EQ(body.body.find("Secret"), std::string::npos) << body.body;  // no held-out title, ever
    EXPECT_EQ(body.body.find("rated 1"), std::string::npos) << body.body;  // nor a held-out rating
  }
  int parts = 0, merges = 0;
  for (const auto& pr : prompts) {
    if (pr.rfind("Below are 3 profiles", 0) == 0) {
      ++merges;  // the three partial answers, oldest part first, with their item ranges
      const size_t a = pr.find("Part 1 (items 1 to 4 of 9):\nPreferences: profile of Film One (1991); Drama; rated 3");
      const size_t b = pr.find("Part 2 (items 5 to 6 of 9):\nPreferences: profile of Film Five (1995); Comedy; rated 3");
      const size_t c = pr.find("Part 3 (items 7 to 9 of 9):\nPreferences: profile of Film Seven (1997); Thriller; rated 3");
      EXPECT_TRUE(a != std::string::npos && b != std::string::npos && c != std::string::npos && a < b && b < c) << pr;
    } else if (pr.find("This is part ") != std::string::npos) {
      ++parts;
      EXPECT_NE(pr.find("of 3 of the history"), std::string::npos) << pr;
    } else {
      EXPECT_EQ(pr.find("part"), std::string::npos) << pr;
    }
    for (const char* section : {"Preferences:", "Behavioural insights:", "Engagement trends:"})
      EXPECT_NE(pr.find(section), std::string::npos) << pr;
  }
  EXPECT_EQ(parts, 3);
  EXPECT_EQ(merges, 1);
  EXPECT_NE(std::find_if(prompts.begin(), prompts.end(),
                         [](const std::string& s) {
                           return s.find("History (2 items):\n1. Film Four (1994); Action; rated 2\n2. Film Five (1995); Comedy; rated 4\n") !=
                                  std::string::npos;
                         }),
            prompts.end());
  ASSERT_EQ(p.users.size(), 3u);
  EXPECT_EQ(llm::user_tokens(t.d, p.users), (std::vector<std::string>{"u1", "u2", "u3"}));
  EXPECT_EQ(p.texts[0], "Preferences: profile of Film One (1991); Drama; rated 5");
  EXPECT_EQ(p.texts[2].rfind("Preferences: merged ", 0), 0u) << p.texts[2];

  // A rerun sends nothing: every answer comes from the cache, the texts are the same.
  const size_t sent = server.count();
  const llm::ProfileTexts again = llm::write_profiles(client, &cache, t.d, t.s, job);
  EXPECT_EQ(server.count(), sent);
  EXPECT_EQ(again.texts, p.texts);
  EXPECT_EQ(again.parts.cached + again.merges.cached, 6);
  // Another wording (here: another split) is another request; only the new prompts are sent.
  job.max_items = 100;
  const llm::ProfileTexts whole = llm::write_profiles(client, &cache, t.d, t.s, job);
  EXPECT_EQ(server.count(), sent + 1);  // u3's whole history in one prompt
  EXPECT_EQ(whole.merge_requests, 0);
}

TEST(LlmProfiles, FailedAndUnparseableAnswersLeaveTheUserWithoutAProfile) {
  const auto dir = scratch("fail");
  const Tiny t;
  FakeLlmServer server([](const FakeRequest& rq, size_t) {
    const std::string p = prompt_of(rq.body);
    if (p.find("\n1. Film Four") != std::string::npos) return FakeReply{400, "{\"error\": {\"message\": \"too long\"}}"};
    if (p.find("\n1. Film Five") != std::string::npos) return FakeReply{200, "{\"choices\": []}"};  // u3's part 2
    if (p.find("Film Three") != std::string::npos && p.find("part") == std::string::npos)
      return FakeReply{200, test::chat_reply_body(" \n ")};
    return profile_server(rq);
  });
  llm::Client client(fast_config(server.base_url(), dir));
  llm::AnswerCache cache((dir / "cache.jsonl").string());
  llm::ProfileJob job;
  job.max_items = 4;
  const llm::ProfileTexts p = llm::write_profiles(client, &cache, t.d, t.s, job);
  ASSERT_TRUE(p.stop.empty()) << p.stop;
  EXPECT_TRUE(p.users.empty());
  EXPECT_EQ(p.failed, 1);       // u2: refused alone (400)
  EXPECT_EQ(p.unparseable, 1);  // u3: a part without choices; no merge is asked for
  EXPECT_EQ(p.empty, 1);        // u1: a blank answer
  EXPECT_EQ(p.merge_requests, 0);
  EXPECT_EQ(p.failed_users, (std::vector<std::string>{"u1", "u2", "u3"}));
  EXPECT_EQ(p.first_failure, "user u1: the answer is empty");
}

TEST(LlmProfiles, OutputLoadsThroughTheProfileLoader) {
  const auto dir = scratch("load");
  const Tiny t;
  const std::vector<std::string> users = {"u1", "u3"};
  const std::vector<std::vector<float>> vecs = {{0.1f, -2.5e-8f, 3.0f}, {1.0f / 3.0f, 0.0f, -7.25f}};
  io::write_file_atomic((dir / "p.json").string(), llm::profile_json(users, vecs));
  data::ProfileOptions po;
  po.log = nullptr;
  const auto table = data::load_profiles({(dir / "p.json").string()}, t.d.users, po);
  EXPECT_EQ(table.dim, 3);
  EXPECT_EQ(table.summary.users_with_profile, 2);
  EXPECT_EQ(table.summary.users_without_profile, 1);
  const int32_t u3 = t.d.users.find("u3");
  ASSERT_TRUE(table.has(u3, 0));
  for (int k = 0; k < 3; ++k) EXPECT_EQ(table.row(u3, 0)[k], vecs[1][size_t(k)]);  // float32 round trip, exactly
  EXPECT_EQ(llm::profile_texts_jsonl({"u\"1"}, {"a\nb"}), "{\"user\": \"u\\\"1\", \"text\": \"a\\nb\"}\n");
  EXPECT_THROW(llm::profile_json({}, {}), Error);
}

// ---------------------------------------------------------------- the command

int run_app(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv = {RECDISTILL_APP_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

fs::path write_config(const fs::path& dir, const std::string& base_url, const std::string& extra = "") {
  const fs::path p = dir / "profiles.yaml";
  std::ofstream(p) << "data:\n  path: " << kFixtures << "/tiny.inter\n  item_path: " << kFixtures
                   << "/tiny.item\nllm:\n  base_url: \"" << base_url
                   << "\"\n  model: fake-chat\n  embedding_model: fake-embed\n  cache: " << (dir / "cache.jsonl").string()
                   << "\n  backoff_initial_s: 0.01\n  backoff_max_s: 0.02\n  max_retries: 1\n  profile_max_items: 4\n"
                   << extra;
  return p;
}

TEST(LlmProfilesCommand, WritesTextsProfilesAndSidecarThenResumesFromTheCache) {
  const auto dir = scratch("cmd");
  FakeLlmServer server([](const FakeRequest& rq, size_t) { return profile_server(rq); });
  const auto cfg = write_config(dir, server.base_url());
  const std::string prefix = (dir / "out" / "tiny").string();
  const std::vector<std::string> args = {"profiles", "--config", cfg.string(), "--output", prefix};
  ASSERT_EQ(run_app(args, dir / "log.txt"), 0) << slurp(dir / "log.txt");
  const std::string log = slurp(dir / "log.txt");
  EXPECT_NE(log.find("profiles: 3 training users, 1 split into parts; 5 part requests, 1 merge requests"), std::string::npos) << log;
  EXPECT_NE(log.find("wrote " + prefix + ".json: 3 profiles of dimension 8"), std::string::npos) << log;
  EXPECT_EQ(server.count(), 7u);  // 5 parts, 1 merge, 1 embedding request
  for (const auto& rq : server.requests()) EXPECT_EQ(rq.body.find("Secret"), std::string::npos);

  const Tiny t;
  data::ProfileOptions po;
  po.log = nullptr;
  const auto table = data::load_profiles({prefix + ".json"}, t.d.users, po);
  EXPECT_EQ(table.dim, 8);
  EXPECT_EQ(table.summary.users_with_profile, 3);
  const std::string texts = slurp(prefix + ".texts.jsonl");
  EXPECT_EQ(std::count(texts.begin(), texts.end(), '\n'), 3);
  EXPECT_EQ(texts.rfind("{\"user\": \"u1\", \"text\": \"Preferences: profile of Film One (1991); Drama; rated 5\"}\n", 0), 0u)
      << texts;
  const std::string meta = slurp(prefix + ".json.meta.json");
  for (const char* field : {"\"profile_kind\": \"llm\"", "\"template_version\": \"profile-short-v1\"", "\"model\": \"fake-chat\"",
                            "\"embedding_model\": \"fake-embed\"", "\"dim\": 8", "\"users\": 3", "\"split\": \"loo\"",
                            "\"profile_max_items\": 4", "\"history\": \"train_split\"",
                            "\"users_without_profile\": {\"failed\": 0, \"unparseable\": 0, \"empty\": 0}"})
    EXPECT_NE(meta.find(field), std::string::npos) << field << "\n" << meta;

  // Nothing is overwritten without --force; with it, everything comes from the cache.
  EXPECT_EQ(run_app(args, dir / "log.txt"), 1);
  EXPECT_NE(slurp(dir / "log.txt").find("error: " + prefix + ".texts.jsonl: exists; give another --output or --force"),
            std::string::npos)
      << slurp(dir / "log.txt");
  auto forced = args;
  forced.push_back("--force");
  ASSERT_EQ(run_app(forced, dir / "log.txt"), 0) << slurp(dir / "log.txt");
  EXPECT_EQ(server.count(), 7u);
  EXPECT_EQ(slurp(prefix + ".texts.jsonl"), texts);
  const std::string profiles = slurp(prefix + ".json");
  // With every answer cached, no endpoint is needed at all.
  forced.insert(forced.end(), {"--set", "llm.base_url=\"\""});
  ASSERT_EQ(run_app(forced, dir / "log.txt"), 0) << slurp(dir / "log.txt");
  EXPECT_NE(slurp(dir / "log.txt").find("(no endpoint: cache only)"), std::string::npos) << slurp(dir / "log.txt");
  EXPECT_EQ(slurp(prefix + ".json"), profiles);

  // --embed-with local: the texts, their sidecar, and the encoder's command.
  const std::string local = (dir / "local").string();
  ASSERT_EQ(run_app({"profiles", "--config", cfg.string(), "--output", local, "--embed-with", "local", "--limit-users", "2"},
                    dir / "log.txt"),
            0)
      << slurp(dir / "log.txt");
  EXPECT_EQ(server.count(), 7u);
  const std::string two = slurp(local + ".texts.jsonl");
  EXPECT_EQ(std::count(two.begin(), two.end(), '\n'), 2) << two;  // u1 and u2
  EXPECT_TRUE(fs::exists(local + ".texts.jsonl.meta.json"));
  EXPECT_FALSE(fs::exists(local + ".json"));
  EXPECT_NE(slurp(dir / "log.txt").find("tools/metadata_profiles.py --texts " + local + ".texts.jsonl --out " + local + ".json"),
            std::string::npos)
      << slurp(dir / "log.txt");
}

TEST(LlmProfilesCommand, AFailingEndpointEndsWithOneErrorLine) {
  const auto dir = scratch("refused");
  const std::string refused = "http://127.0.0.1:" + std::to_string(test::closed_port()) + "/v1";
  const auto cfg = write_config(dir, refused);
  EXPECT_EQ(run_app({"profiles", "--config", cfg.string(), "--output", (dir / "p").string()}, dir / "err.txt"), 1);
  const std::string err = slurp(dir / "err.txt");
  const size_t at = err.find("error: ");
  ASSERT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.substr(at).rfind("error: " + refused + "/chat/completions: connection refused or unreachable", 0), 0u) << err;
  EXPECT_NE(err.find("0 of 5 part requests have an answer in " + (dir / "cache.jsonl").string() +
                     ", run the same command again to send the rest"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find('\n', at), err.size() - 1) << err;  // one line, the last
  EXPECT_FALSE(fs::exists(dir / "p.texts.jsonl"));
}

}  // namespace
}  // namespace recdistill
