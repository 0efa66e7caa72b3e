// The LLM client (llm/): the protocol's bodies and reply parsers, the answer cache (records,
// torn lines, claims shared by processes, recorded answers), and the client against a fake
// OpenAI-compatible server on the loopback interface: normal and slow replies, 429 with
// Retry-After, 5xx then success, refused connections, malformed replies, budgets, a batch
// killed midway and resumed, and two processes sharing one cache (the last two through the
// `recdistill llm batch` command).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "../common/fake_llm_server.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/llm/llm.hpp"

extern char** environ;

namespace recdistill {
namespace {

namespace fs = std::filesystem;
using llm::AnswerCache;
using llm::CacheKey;
using llm::Status;
using test::FakeLlmServer;
using test::FakeReply;
using test::FakeRequest;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A fresh folder per test.
fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("recdistill_llm_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

llm::LlmConfig fast_config(const std::string& base_url, const fs::path& dir) {
  llm::LlmConfig c;
  c.base_url = base_url;
  c.model = "fake-chat";
  c.embedding_model = "fake-embed";
  c.api_key_env = "RECDISTILL_TEST_LLM_KEY";
  c.timeout_s = 5;
  c.max_retries = 3;
  c.backoff_initial_s = 0.01;
  c.backoff_max_s = 0.05;
  c.concurrency = 2;
  c.cache = (dir / "cache.jsonl").string();
  return c;
}

std::vector<llm::Request> chat_requests(const llm::LlmConfig& c, int n, const std::string& tag = "q") {
  std::vector<llm::Request> r;
  for (int i = 0; i < n; ++i) r.push_back(llm::chat_request(c, "test", "t1", {{"user", tag + std::to_string(i)}}));
  return r;
}

// The prompt a chat request body carries (the fake server answers by it).
std::string prompt_of(const std::string& body) {
  const auto p = llm::parse_batch_input("{\"id\": 1, " + body.substr(body.find("\"messages\"")), "body", false);
  return p[0].messages[0].content;
}

FakeReply ok_reply(const FakeRequest& rq) { return {200, test::chat_reply_body("answer to " + prompt_of(rq.body))}; }

// ---------------------------------------------------------------- protocol

TEST(LlmProtocol, ChatBodyIsExactAndKeysTheCache) {
  const std::string b = llm::chat_body("m", {{"system", "be brief"}, {"user", "say \"hi\"\n"}}, 0.0, 0);
  EXPECT_EQ(b, "{\"model\": \"m\", \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", "
               "\"content\": \"say \\\"hi\\\"\\n\"}], \"temperature\": 0}");
  EXPECT_EQ(llm::chat_body("m", {{"user", "x"}}, 0.7, 100),
            "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": 0.7, \"max_tokens\": 100}");
  EXPECT_EQ(llm::embeddings_body("e", {"a", "b"}), "{\"model\": \"e\", \"input\": [\"a\", \"b\"]}");
  // SHA-256 of the exact body (the cache key); known value of "abc".
  EXPECT_EQ(llm::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  llm::LlmConfig c;
  c.base_url = "http://h:1/v1/";
  c.model = "m";
  const auto r = llm::chat_request(c, "p", "t", {{"user", "x"}});
  EXPECT_EQ(r.url, "http://h:1/v1/chat/completions");
  EXPECT_EQ(r.key.request_key, "sha256:" + llm::sha256_hex(r.body));
  EXPECT_NE(llm::chat_request(c, "p", "t", {{"user", "y"}}).key.id(), r.key.id());
}

TEST(LlmProtocol, ChatReplies) {
  auto ok = llm::parse_chat_reply(test::chat_reply_body("[ID_1, ID_2]", 12, 7));
  ASSERT_TRUE(std::holds_alternative<llm::ChatReply>(ok));
  const auto& r = std::get<llm::ChatReply>(ok);
  EXPECT_EQ(r.content, "[ID_1, ID_2]");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.model, "fake");
  EXPECT_EQ(r.usage.prompt_tokens, 12);
  EXPECT_EQ(r.usage.completion_tokens, 7);
  const std::map<std::string, std::string> bad = {
      {"not json", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"id\": \"x\"}", "no 'choices'"},
      {"{\"choices\": []}", "'choices' is empty"},
      {"{\"choices\": {}}", "'choices' is not a list"},
      {"{\"choices\": [{\"text\": \"legacy\"}]}", "no 'message' object"},
      {"{\"choices\": [{\"message\": {\"content\": null}}]}", "content is null"},
      {"{\"choices\": [{\"message\": {\"content\": 5}}]}", "not a string"},
      {"{\"error\": {\"message\": \"model overloaded\"}}", "error: model overloaded"},
  };
  for (const auto& [body, what] : bad) {
    const auto p = llm::parse_chat_reply(body);
    ASSERT_TRUE(std::holds_alternative<llm::ReplyError>(p)) << body;
    EXPECT_NE(std::get<llm::ReplyError>(p).what.find(what), std::string::npos) << body << " -> " << std::get<llm::ReplyError>(p).what;
  }
}

TEST(LlmProtocol, EmbeddingReplies) {
  auto ok = llm::parse_embedding_reply(
      "{\"data\": [{\"index\": 1, \"embedding\": [3, 4]}, {\"index\": 0, \"embedding\": [1, 2.5]}], \"usage\": {\"prompt_tokens\": 4}}", 2);
  ASSERT_TRUE(std::holds_alternative<llm::EmbeddingReply>(ok));
  const auto& e = std::get<llm::EmbeddingReply>(ok).embeddings;
  EXPECT_EQ(e[0], (std::vector<float>{1, 2.5f}));
  EXPECT_EQ(e[1], (std::vector<float>{3, 4}));
  const std::map<std::string, std::string> bad = {
      {"{\"data\": [{\"embedding\": [1]}]}", "1 embeddings for 2 inputs"},
      {"{\"data\": [{\"embedding\": [1]}, {\"embedding\": [1, 2]}]}", "has 2 values"},
      {"{\"data\": [{\"index\": 0, \"embedding\": [1]}, {\"index\": 0, \"embedding\": [2]}]}", "repeats index 0"},
      {"{\"data\": [{\"index\": 7, \"embedding\": [1]}, {\"embedding\": [2]}]}", "not an input index"},
      {"{\"data\": [{\"embedding\": \"AAAA\"}, {\"embedding\": [2]}]}", "base64"},
      {"{\"data\": [{\"embedding\": [1e300]}, {\"embedding\": [2]}]}", "not finite as float32"},
      {"{\"data\": [{\"embedding\": []}, {\"embedding\": []}]}", "is empty"},
  };
  for (const auto& [body, what] : bad) {
    const auto p = llm::parse_embedding_reply(body, 2);
    ASSERT_TRUE(std::holds_alternative<llm::ReplyError>(p)) << body;
    EXPECT_NE(std::get<llm::ReplyError>(p).what.find(what), std::string::npos) << body << " -> " << std::get<llm::ReplyError>(p).what;
  }
}

TEST(LlmProtocol, RetryAfterAndErrorText) {
  const auto no_dates = [](const std::string&) { return -1.0; };
  EXPECT_EQ(llm::retry_after_seconds(" 3\r\n", 0, no_dates), 3);
  EXPECT_EQ(llm::retry_after_seconds("1.5", 0, no_dates), 1.5);
  EXPECT_EQ(llm::retry_after_seconds("soon", 0, no_dates), -1);
  EXPECT_EQ(llm::retry_after_seconds("", 0, no_dates), -1);
  const auto date = [](const std::string& d) { return d == "Wed, 21 Oct 2015 07:28:00 GMT" ? 1445412480.0 : -1.0; };
  EXPECT_EQ(llm::retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0, date), 10);
  EXPECT_EQ(llm::error_text("{\"error\": {\"message\": \"no such model\", \"type\": \"x\"}}"), "no such model");
  EXPECT_EQ(llm::error_text("{\"detail\": \"Not Found\"}"), "Not Found");
  EXPECT_EQ(llm::error_text("plain\ntext"), "plain text");
}

// ---------------------------------------------------------------- the cache

CacheKey key(const std::string& k) { return {"test", "t1", "m", k}; }

llm::CacheRecord answer(const std::string& k, const std::string& content) {
  llm::CacheRecord r;
  r.key = key(k);
  r.status = "ok";
  r.url = "http://x/v1/chat/completions";
  r.request = "{}";
  r.response = test::chat_reply_body(content);
  return r;
}

TEST(LlmCache, AnswersPersistAndTheFirstWins) {
  const auto dir = scratch("persist");
  const std::string path = (dir / "c.jsonl").string();
  {
    AnswerCache c(path);
    auto cl = c.claim(key("a"), 60);
    ASSERT_EQ(cl.state, AnswerCache::ClaimState::claimed);
    c.complete(answer("a", "first"));
    c.complete(answer("a", "second"));  // a duplicate: counted, the first wins
    EXPECT_EQ(c.claim(key("a"), 60).state, AnswerCache::ClaimState::answered);
  }
  std::ostringstream warn;
  AnswerCache c(path, &warn);
  const auto a = c.find(key("a"));
  ASSERT_TRUE(a);
  EXPECT_NE(a->response.find("first"), std::string::npos);
  EXPECT_EQ(a->line, 2u);  // after the inflight record
  EXPECT_FALSE(c.find(key("b")));
  EXPECT_EQ(c.snapshot().duplicates, 1u);
  EXPECT_NE(warn.str().find("1 repeated answers"), std::string::npos);
  // Every line is one record, each ending in a newline.
  const std::string text = slurp(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_EQ(text.back(), '\n');
}

TEST(LlmCache, TornLastLineIsDroppedWithAWarningAndCutBeforeTheNextAppend) {
  const auto dir = scratch("torn");
  const std::string path = (dir / "c.jsonl").string();
  {
    AnswerCache c(path);
    c.complete(answer("a", "kept"));
  }
  const std::string whole = llm::answer_line(answer("b", "torn"));
  spit(path, slurp(path) + whole.substr(0, whole.size() / 2));  // a crash mid-write
  std::ostringstream warn;
  {
    AnswerCache c(path, &warn);
    EXPECT_NE(warn.str().find("c.jsonl:2: dropped a torn last line"), std::string::npos) << warn.str();
    EXPECT_TRUE(c.find(key("a")));
    EXPECT_FALSE(c.find(key("b")));
    c.complete(answer("c", "after"));
  }
  std::ostringstream warn2;
  AnswerCache c(path, &warn2);
  EXPECT_EQ(warn2.str(), "");  // consistent again: the torn bytes are gone
  EXPECT_TRUE(c.find(key("c")));
  EXPECT_EQ(c.find(key("c"))->line, 2u);
}

TEST(LlmCache, CompleteLastLineWithoutNewlineIsKept) {
  const auto dir = scratch("nonl");
  const std::string path = (dir / "c.jsonl").string();
  std::string line = llm::answer_line(answer("a", "x"));
  line.pop_back();
  spit(path, line);
  {
    AnswerCache c(path);
    EXPECT_TRUE(c.find(key("a")));
    c.complete(answer("b", "y"));
  }
  AnswerCache c(path);
  EXPECT_TRUE(c.find(key("a")));
  EXPECT_TRUE(c.find(key("b")));
  EXPECT_EQ(c.snapshot().lines, 2u);
}

TEST(LlmCache, MalformedLinesNameFileAndLine) {
  const auto dir = scratch("malformed");
  const std::string good = llm::answer_line(answer("a", "x"));
  const std::map<std::string, std::string> cases = {
      {good + "{not json}\n" + good, "c.jsonl:2: not a cache record: invalid JSON"},
      {good + "\n" + good, "c.jsonl:2: an empty line"},
      {"[1]\n", "c.jsonl:1: not a cache record: expected a JSON object"},
      {"{\"v\": 2}\n", "c.jsonl:1: key 'v': expected format version 1"},
      {"{\"v\": 1, \"status\": \"ok\", \"purpose\": \"p\"}\n", "c.jsonl:1: key 'template_id': expected a string"},
      {"{\"v\": 1, \"status\": \"maybe\", \"purpose\": \"p\", \"template_id\": \"t\", \"model\": \"m\", \"key\": \"k\", \"time\": \"\"}\n",
       "c.jsonl:1: key 'status': expected ok, unparseable, recorded, inflight or released, found 'maybe'"},
  };
  for (const auto& [text, msg] : cases) {
    spit(dir / "c.jsonl", text);
    try {
      AnswerCache c((dir / "c.jsonl").string());
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(AnswerCache(dir.string()), Error);  // a folder
}

std::string inflight_line(const CacheKey& k, int64_t pid, const std::string& host, double expires) {
  return "{\"v\": 1, \"status\": \"inflight\", \"purpose\": \"" + k.purpose + "\", \"template_id\": \"" + k.template_id +
         "\", \"model\": \"" + k.model + "\", \"key\": \"" + k.request_key + "\", \"claim\": \"other-1\", \"pid\": " +
         std::to_string(pid) + ", \"host\": \"" + host + "\", \"expires\": " + io::json_number(expires) + ", \"time\": \"\"}\n";
}

TEST(LlmCache, ClaimsKeepTwoWritersFromSendingTheSameRequest) {
  const auto dir = scratch("claims");
  const std::string path = (dir / "c.jsonl").string();
  AnswerCache a(path), b(path);  // two users of one file (each as another process would)
  const auto ca = a.claim(key("k"), 60);
  ASSERT_EQ(ca.state, AnswerCache::ClaimState::claimed);
  EXPECT_EQ(b.claim(key("k"), 60).state, AnswerCache::ClaimState::busy);
  a.release(key("k"), ca.token);
  const auto cb = b.claim(key("k"), 60);
  ASSERT_EQ(cb.state, AnswerCache::ClaimState::claimed);
  EXPECT_EQ(a.claim(key("k"), 60).state, AnswerCache::ClaimState::busy);
  b.complete(answer("k", "done"));
  EXPECT_EQ(a.claim(key("k"), 60).state, AnswerCache::ClaimState::answered);

  // Claims left by a process that is gone, or whose time is up, are stale; a live claim of
  // another machine is honoured until it expires.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const double now = llm::epoch_seconds();
  std::ofstream(path, std::ios::app) << inflight_line(key("dead"), child, llm::host_name(), now + 3600)
                                     << inflight_line(key("expired"), 1, "elsewhere", now - 1)
                                     << inflight_line(key("remote"), 1, "elsewhere", now + 3600);
  EXPECT_EQ(a.claim(key("dead"), 60).state, AnswerCache::ClaimState::claimed);
  EXPECT_EQ(a.claim(key("expired"), 60).state, AnswerCache::ClaimState::claimed);
  const auto remote = a.claim(key("remote"), 60);
  EXPECT_EQ(remote.state, AnswerCache::ClaimState::busy);
  EXPECT_EQ(remote.holder, "pid 1 on elsewhere");
}

TEST(LlmCache, RecordedAnswersOfAlkdrecMl) {
  const auto dir = scratch("recorded");
  const std::string src = std::string(RECDISTILL_SOURCE_DIR) + "/data/alkdrec-ml/llm_answers.jsonl";
  const CacheKey base{"rank", "alkdrec-ml-recorded", "gpt-4-turbo-2024-04-09", ""};
  const auto recs = llm::parse_recorded_answers(slurp(src), src, base, "session_id", "session:");
  ASSERT_EQ(recs.size(), 4992u);
  AnswerCache c((dir / "c.jsonl").string());
  EXPECT_EQ(c.add_recorded(recs), 4992u);
  EXPECT_EQ(c.add_recorded(recs), 0u);  // already there
  CacheKey k = base;
  k.request_key = "session:2604";
  const auto a = c.find(k);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, "recorded");
  EXPECT_EQ(a->response.substr(0, 57), "{\"session_id\":2604,\"ranked_items\":[217,2058,4270,940,699,");
  EXPECT_NE(a->source.find("llm_answers.jsonl:1"), std::string::npos);
  k.request_key = "session:12322";  // a test session: no recorded answer
  EXPECT_FALSE(c.find(k));
  k.request_key = "session:2604";  // another template id never matches a recorded answer
  k.template_id = "live-v1";
  EXPECT_FALSE(c.find(k));
  // Bad files name the file and line.
  EXPECT_THROW(llm::parse_recorded_answers("{\"session_id\": 1}\n{\"session_id\": 1}\n", "a.jsonl", base, "session_id", "s:"), Error);
  try {
    llm::parse_recorded_answers("{\"session_id\": 1}\n{\"x\": 1}\n", "a.jsonl", base, "session_id", "s:");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:2: key 'session_id'"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- the client

TEST(LlmClient, NormalRepliesAreCachedAndNeverSentTwice) {
  const auto dir = scratch("normal");
  FakeLlmServer server([](const FakeRequest& rq, size_t) { return ok_reply(rq); });
  ::setenv("RECDISTILL_TEST_LLM_KEY", "sk-secret-123", 1);
  auto cfg = fast_config(server.base_url(), dir);
  llm::Client client(cfg);
  AnswerCache cache(cfg.cache);
  const auto reqs = chat_requests(cfg, 5);
  const auto rep = client.run(reqs, &cache);
  EXPECT_EQ(rep.answered, 5);
  EXPECT_TRUE(rep.stop.empty());
  EXPECT_EQ(rep.usage.prompt_tokens, 50);
  EXPECT_EQ(rep.usage.completion_tokens, 25);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_EQ(rep.results[i].status, Status::answered);
    const auto reply = llm::chat_reply_of(rep.results[i]);
    EXPECT_EQ(std::get<llm::ChatReply>(reply).content, "answer to q" + std::to_string(i));
  }
  ASSERT_EQ(server.count(), 5u);
  for (const auto& rq : server.requests()) {
    EXPECT_EQ(rq.path, "/v1/chat/completions");
    EXPECT_EQ(rq.authorization, "Bearer sk-secret-123");
  }
  // A second run (another process would do the same) sends nothing.
  AnswerCache again(cfg.cache);
  const auto rep2 = client.run(reqs, &again);
  EXPECT_EQ(rep2.cached, 5);
  EXPECT_EQ(rep2.sent, 0);
  EXPECT_EQ(server.count(), 5u);
  EXPECT_EQ(slurp(cfg.cache).find("sk-secret-123"), std::string::npos);  // the key is never written
  ::unsetenv("RECDISTILL_TEST_LLM_KEY");
}

TEST(LlmClient, SlowRepliesTimeOutAndAreRetried) {
  const auto dir = scratch("slow");
  // The first attempt of each request is slow, the retry is quick.
  FakeLlmServer server([](const FakeRequest& rq, size_t i) {
    FakeReply r = ok_reply(rq);
    if (i == 0) r.delay_s = 30;
    return r;
  });
  auto cfg = fast_config(server.base_url(), dir);
  cfg.timeout_s = 2;  // the slow attempt waits 30 s; the retry is answered at once
  cfg.concurrency = 1;
  llm::Client client(cfg);
  AnswerCache cache(cfg.cache);
  const auto rep = client.run(chat_requests(cfg, 1), &cache);
  EXPECT_EQ(rep.answered, 1);
  EXPECT_EQ(rep.retries, 1);

  // Always slow: the request fails after its retries, the batch stops with one line naming the
  // endpoint and the cause, and the claim is released (the cache stays consistent).
  FakeLlmServer never([](const FakeRequest& rq, size_t) {
    FakeReply r = ok_reply(rq);
    r.delay_s = 30;
    return r;
  });
  auto cfg2 = fast_config(never.base_url(), dir);
  cfg2.timeout_s = 0.2;
  cfg2.max_retries = 1;
  cfg2.concurrency = 1;
  cfg2.cache = (dir / "c2.jsonl").string();
  AnswerCache c2(cfg2.cache);
  const auto bad = llm::Client(cfg2).run(chat_requests(cfg2, 3), &c2);
  EXPECT_EQ(bad.failed, 1);
  EXPECT_EQ(bad.not_sent, 2);
  EXPECT_EQ(bad.stop.rfind(never.base_url() + "/chat/completions: no complete reply within llm.timeout_s = 0.2 s (", 0), 0u)
      << bad.stop;
  EXPECT_NE(bad.stop.find("(2 attempts)"), std::string::npos) << bad.stop;
  EXPECT_EQ(bad.stop.find('\n'), std::string::npos);
  AnswerCache reread(cfg2.cache);
  EXPECT_EQ(reread.claim(chat_requests(cfg2, 1)[0].key, 60).state, AnswerCache::ClaimState::claimed);
  never.stop();
}

TEST(LlmClient, TooManyRequestsHonoursRetryAfter) {
  const auto dir = scratch("429");
  FakeLlmServer server([](const FakeRequest& rq, size_t i) {
    if (i == 0) return FakeReply{429, "{\"error\": {\"message\": \"slow down\"}}", {{"Retry-After", "0.25"}}};
    return ok_reply(rq);
  });
  auto cfg = fast_config(server.base_url(), dir);
  cfg.concurrency = 1;
  llm::Client client(cfg);
  std::vector<double> waits;
  client.on_retry_wait = [&](double s) { waits.push_back(s); };
  AnswerCache cache(cfg.cache);
  const auto rep = client.run(chat_requests(cfg, 1), &cache);
  EXPECT_EQ(rep.answered, 1);
  EXPECT_EQ(waits, std::vector<double>{0.25});
  EXPECT_EQ(server.count(), 2u);

  // A Retry-After longer than llm.retry_after_max_s fails the request at once.
  FakeLlmServer busy([](const FakeRequest&, size_t) { return FakeReply{429, "{}", {{"Retry-After", "3600"}}}; });
  auto cfg2 = fast_config(busy.base_url(), dir);
  cfg2.retry_after_max_s = 10;
  cfg2.cache = (dir / "c2.jsonl").string();
  AnswerCache c2(cfg2.cache);
  const auto rep2 = llm::Client(cfg2).run(chat_requests(cfg2, 1), &c2);
  EXPECT_EQ(rep2.failed, 1);
  EXPECT_NE(rep2.stop.find("HTTP 429: the server asks to wait 3600 s, more than llm.retry_after_max_s = 10 s"), std::string::npos)
      << rep2.stop;
  EXPECT_EQ(busy.count(), 1u);
}

TEST(LlmClient, ServerErrorsThenSuccessWithExponentialBackoff) {
  const auto dir = scratch("5xx");
  FakeLlmServer server([](const FakeRequest& rq, size_t i) {
    if (i < 2) return FakeReply{i == 0 ? 500 : 503, "{\"error\": {\"message\": \"overloaded\"}}"};
    return ok_reply(rq);
  });
  auto cfg = fast_config(server.base_url(), dir);
  cfg.concurrency = 1;
  cfg.backoff_initial_s = 0.02;
  cfg.backoff_max_s = 1;
  llm::Client client(cfg);
  std::vector<double> waits;
  client.on_retry_wait = [&](double s) { waits.push_back(s); };
  AnswerCache cache(cfg.cache);
  const auto rep = client.run(chat_requests(cfg, 1), &cache);
  EXPECT_EQ(rep.answered, 1);
  EXPECT_EQ(rep.retries, 2);
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_GE(waits[0], 0.01);  // 0.02 s with jitter in [50%, 100%]
  EXPECT_LE(waits[0], 0.02);
  EXPECT_GE(waits[1], 0.02);  // doubled
  EXPECT_LE(waits[1], 0.04);

  // Still failing after the retries: the batch stops and says so.
  FakeLlmServer down([](const FakeRequest&, size_t) { return FakeReply{502, "bad gateway"}; });
  auto cfg2 = fast_config(down.base_url(), dir);
  cfg2.max_retries = 2;
  cfg2.concurrency = 1;
  cfg2.cache = (dir / "c2.jsonl").string();
  AnswerCache c2(cfg2.cache);
  const auto rep2 = llm::Client(cfg2).run(chat_requests(cfg2, 4), &c2);
  EXPECT_EQ(rep2.stop, down.base_url() + "/chat/completions: HTTP 502: bad gateway (3 attempts)");
  EXPECT_EQ(rep2.failed + rep2.not_sent, 4);
  EXPECT_EQ(down.count(), 3u);
}

TEST(LlmClient, RefusedConnectionAndWrongUrlStopTheBatch) {
  const auto dir = scratch("refused");
  auto cfg = fast_config("http://127.0.0.1:" + std::to_string(test::closed_port()) + "/v1", dir);
  cfg.max_retries = 1;
  cfg.concurrency = 1;
  AnswerCache cache(cfg.cache);
  const auto rep = llm::Client(cfg).run(chat_requests(cfg, 3), &cache);
  EXPECT_EQ(rep.failed, 1);
  EXPECT_EQ(rep.not_sent, 2);
  EXPECT_EQ(rep.stop.rfind(cfg.base_url + "/chat/completions: connection refused or unreachable (", 0), 0u) << rep.stop;
  EXPECT_EQ(rep.stop.find('\n'), std::string::npos);
  // Every claim was released: a later run may send all three.
  const auto st = AnswerCache(cfg.cache).snapshot();
  for (const auto& [k, slot] : st.slots) EXPECT_FALSE(slot.claim) << k;

  // A wrong path: 404 is not retried, and stops the batch.
  FakeLlmServer server([](const FakeRequest&, size_t) { return FakeReply{404, "{\"detail\": \"Not Found\"}"}; });
  auto cfg2 = fast_config(server.base_url() + "/v2", dir);
  cfg2.cache = (dir / "c2.jsonl").string();
  AnswerCache c2(cfg2.cache);
  const auto rep2 = llm::Client(cfg2).run(chat_requests(cfg2, 5), &c2);
  EXPECT_EQ(rep2.stop, server.base_url() + "/v2/chat/completions: HTTP 404: Not Found");
  EXPECT_LE(server.count(), 2u);  // concurrency 2: at most the two first requests went out
  // A request the server refuses alone (400) fails alone; the batch goes on.
  FakeLlmServer picky([](const FakeRequest& rq, size_t) {
    if (prompt_of(rq.body) == "q1") return FakeReply{400, "{\"error\": {\"message\": \"prompt too long\"}}"};
    return ok_reply(rq);
  });
  auto cfg3 = fast_config(picky.base_url(), dir);
  cfg3.cache = (dir / "c3.jsonl").string();
  AnswerCache c3(cfg3.cache);
  const auto rep3 = llm::Client(cfg3).run(chat_requests(cfg3, 4), &c3);
  EXPECT_TRUE(rep3.stop.empty());
  EXPECT_EQ(rep3.answered, 3);
  EXPECT_EQ(rep3.results[1].status, Status::failed);
  EXPECT_EQ(rep3.results[1].error, picky.base_url() + "/chat/completions: HTTP 400: prompt too long");
  // A URL that is not one is refused before anything is sent.
  auto bad = cfg;
  bad.base_url = "127.0.0.1:8000/v1";
  EXPECT_THROW(llm::Client{bad}, Error);
}

TEST(LlmClient, MalformedRepliesAreCachedAsUnparseable) {
  const auto dir = scratch("malformed_reply");
  FakeLlmServer server([](const FakeRequest& rq, size_t) {
    const std::string p = prompt_of(rq.body);
    if (p == "q0") return FakeReply{200, "{\"choices\": [{\"message\": {\"content\": \"ok\"}}"};  // cut JSON
    if (p == "q1") return FakeReply{200, "{\"object\": \"chat.completion\", \"usage\": {\"prompt_tokens\": 3}}"};
    return ok_reply(rq);
  });
  auto cfg = fast_config(server.base_url(), dir);
  AnswerCache cache(cfg.cache);
  const auto reqs = chat_requests(cfg, 3);
  const auto rep = llm::Client(cfg).run(reqs, &cache);
  EXPECT_EQ(rep.unparseable, 2);
  EXPECT_EQ(rep.answered, 1);
  EXPECT_NE(rep.results[0].error.find("/chat/completions: the reply is not valid JSON"), std::string::npos) << rep.results[0].error;
  EXPECT_EQ(rep.results[1].error, server.base_url() + "/chat/completions: the reply has no 'choices'");
  EXPECT_EQ(rep.usage.prompt_tokens, 13);  // the unparseable reply's usage still counts
  // Paid for, so never sent again.
  AnswerCache again(cfg.cache);
  const auto rep2 = llm::Client(cfg).run(reqs, &again);
  EXPECT_EQ(rep2.unparseable, 2);
  EXPECT_EQ(rep2.cached, 1);
  EXPECT_EQ(server.count(), 3u);
}

TEST(LlmClient, RepliesThatAreNotUtf8KeepTheCacheReadable) {
  const auto dir = scratch("utf8");
  const std::string long_error = "{\"error\": {\"message\": \"" + std::string(120, 'x') + "\xc3\xa9\xc3\xa9\xc3\xa9" +
                                 std::string(200, 'y') + "\"}}";
  FakeLlmServer server([&](const FakeRequest& rq, size_t) {
    const std::string p = prompt_of(rq.body);
    if (p == "q0") return FakeReply{200, "\xff\xfe not json \xe2\x82"};        // invalid UTF-8, cut sequence
    if (p == "q1") return FakeReply{200, "{\"choices\": [\xc3\xa9\xc3"};    // cut inside a character
    if (p == "q2") return FakeReply{200, long_error};                           // clipped error text
    return FakeReply{200, test::chat_reply_body("caf\xc3\xa9 \xe2\x98\x95")};  // valid UTF-8 kept as is
  });
  auto cfg = fast_config(server.base_url(), dir);
  {
    AnswerCache cache(cfg.cache);
    const auto rep = llm::Client(cfg).run(chat_requests(cfg, 4), &cache);
    EXPECT_EQ(rep.unparseable, 3);
    EXPECT_EQ(rep.answered, 1);
    EXPECT_TRUE(rep.stop.empty()) << rep.stop;
  }
  std::ostringstream warn;
  AnswerCache again(cfg.cache, &warn);
  EXPECT_EQ(warn.str(), "");
  const auto st = again.snapshot();
  ASSERT_EQ(st.records.size(), 4u);
  const auto reqs = chat_requests(cfg, 4);
  const auto ok = again.find(reqs[3].key);
  ASSERT_TRUE(ok);
  EXPECT_EQ(std::get<llm::ChatReply>(llm::parse_chat_reply(ok->response)).content, "caf\xc3\xa9 \xe2\x98\x95");
  EXPECT_NE(again.find(reqs[0].key)->response.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD for the bad bytes
}

TEST(LlmClient, WithoutAnEndpointOnlyCachedAnswersAreUsed) {
  const auto dir = scratch("no_endpoint");
  FakeLlmServer server([](const FakeRequest& rq, size_t) { return ok_reply(rq); });
  auto live = fast_config(server.base_url(), dir);
  auto offline = live;
  offline.base_url = "";
  {
    AnswerCache cache(live.cache);
    EXPECT_EQ(llm::Client(live).run(chat_requests(live, 2), &cache).answered, 2);
  }
  AnswerCache cache(offline.cache);
  // The keys do not depend on the URL, so the cached answers are found.
  const auto cached = llm::Client(offline).run(chat_requests(offline, 2), &cache);
  EXPECT_EQ(cached.cached, 2);
  EXPECT_TRUE(cached.stop.empty());
  const auto rep = llm::Client(offline).run(chat_requests(offline, 3), &cache);
  EXPECT_EQ(rep.cached, 2);
  EXPECT_EQ(rep.not_sent, 1);
  EXPECT_NE(rep.stop.find("no LLM endpoint is configured (llm.base_url is empty): test/t1/fake-chat/sha256:"), std::string::npos)
      << rep.stop;
  EXPECT_EQ(server.count(), 2u);
}

TEST(LlmClient, BudgetsStopTheBatchAndAResumeSendsTheRest) {
  const auto dir = scratch("budget");
  FakeLlmServer server([](const FakeRequest& rq, size_t) {
    return FakeReply{200, test::chat_reply_body("a " + prompt_of(rq.body), 60, 40)};
  });
  auto cfg = fast_config(server.base_url(), dir);
  cfg.concurrency = 1;
  cfg.max_requests = 3;
  const auto reqs = chat_requests(cfg, 5);
  {
    AnswerCache cache(cfg.cache);
    const auto rep = llm::Client(cfg).run(reqs, &cache);
    EXPECT_EQ(rep.answered, 3);
    EXPECT_EQ(rep.not_sent, 2);
    EXPECT_EQ(rep.stop, server.base_url() + "/chat/completions: the request budget is spent (llm.max_requests = 3)");
  }
  {
    AnswerCache cache(cfg.cache);
    const auto rep = llm::Client(cfg).run(reqs, &cache);  // the cached three cost nothing
    EXPECT_EQ(rep.cached, 3);
    EXPECT_EQ(rep.answered, 2);
    EXPECT_TRUE(rep.stop.empty());
  }
  EXPECT_EQ(server.count(), 5u);
  // Tokens: 100 per reply; the budget is checked before each request.
  auto tok = cfg;
  tok.max_requests = 0;
  tok.max_total_tokens = 250;
  tok.cache = (dir / "tok.jsonl").string();
  AnswerCache ct(tok.cache);
  const auto rt = llm::Client(tok).run(chat_requests(tok, 5, "t"), &ct);
  EXPECT_EQ(rt.answered, 3);
  EXPECT_EQ(rt.stop, server.base_url() + "/chat/completions: the token budget is spent (300 tokens, llm.max_total_tokens = 250)");
  // Cost: $1 per million prompt tokens, $10 per million completion tokens: $0.00046 per reply.
  auto cost = tok;
  cost.max_total_tokens = 0;
  cost.price_input_per_mtok = 1;
  cost.price_output_per_mtok = 10;
  cost.max_cost_usd = 0.001;
  cost.cache = (dir / "cost.jsonl").string();
  AnswerCache cc(cost.cache);
  const auto rc = llm::Client(cost).run(chat_requests(cost, 5, "c"), &cc);
  EXPECT_EQ(rc.answered, 3);
  EXPECT_NEAR(rc.cost_usd, 3 * 0.00046, 1e-12);
  EXPECT_NE(rc.stop.find("/chat/completions: the cost budget is spent ($0.00138"), std::string::npos) << rc.stop;
  EXPECT_NEAR(AnswerCache(cost.cache).snapshot().records[0].cost_usd, 0.00046, 1e-15);
}

TEST(LlmClient, EmbeddingsInBatchesKeepInputOrder) {
  const auto dir = scratch("embed");
  FakeLlmServer server([](const FakeRequest& rq, size_t) {
    // {"model": "fake-embed", "input": ["a", "b"]}: one comma after the model, n - 1 between inputs.
    const size_t n = size_t(std::count(rq.body.begin(), rq.body.end(), ','));
    return FakeReply{200, test::embedding_reply_body(n, 4)};
  });
  auto cfg = fast_config(server.base_url(), dir);
  cfg.embedding_batch = 2;
  llm::Client client(cfg);
  AnswerCache cache(cfg.cache);
  const auto v = llm::embed(client, &cache, "profile", "emb-v1", {"a", "b", "c", "d", "e"});
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(server.count(), 3u);
  for (const auto& rq : server.requests()) EXPECT_EQ(rq.path, "/v1/embeddings");
  EXPECT_FLOAT_EQ(v[0][1], 0.02f);  // request 1, vector 0
  EXPECT_FLOAT_EQ(v[1][1], 0.04f);  // request 1, vector 1
  EXPECT_FLOAT_EQ(v[4][3], 0.04f);  // request 3, vector 0
  // Cached: the same texts cost nothing.
  EXPECT_EQ(llm::embed(client, &cache, "profile", "emb-v1", {"a", "b", "c", "d", "e"}), v);
  EXPECT_EQ(server.count(), 3u);
}

TEST(LlmClient, ConcurrencyIsBounded) {
  const auto dir = scratch("concurrency");
  std::atomic<int> active{0}, peak{0};
  FakeLlmServer server([&](const FakeRequest& rq, size_t) {
    const int now = ++active;
    for (int p = peak; now > p && !peak.compare_exchange_weak(p, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    --active;
    return ok_reply(rq);
  });
  auto cfg = fast_config(server.base_url(), dir);
  cfg.concurrency = 3;
  AnswerCache cache(cfg.cache);
  const auto rep = llm::Client(cfg).run(chat_requests(cfg, 12), &cache);
  EXPECT_EQ(rep.answered, 12);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2);  // requests did overlap
}

TEST(LlmClient, ProgressShowsRateAndEta) {
  const auto dir = scratch("progress");
  FakeLlmServer server([](const FakeRequest& rq, size_t) { return ok_reply(rq); });
  auto cfg = fast_config(server.base_url(), dir);
  AnswerCache cache(cfg.cache);
  std::ostringstream out;
  llm::BatchOptions bo;
  bo.progress = &out;
  bo.progress_options.mode = io::ProgressMode::terminal;
  bo.progress_options.redraw_seconds = 0;
  bo.progress_options.width = 200;
  const auto rep = llm::Client(cfg).run(chat_requests(cfg, 4), &cache, bo);
  EXPECT_EQ(rep.answered, 4);
  const std::string s = out.str();
  EXPECT_NE(s.find("requests/s"), std::string::npos) << s;
  EXPECT_NE(s.find("ETA"), std::string::npos) << s;
  EXPECT_NE(s.find("/4 requests"), std::string::npos) << s;
  EXPECT_NE(s.find("llm: 4 requests: 4 answered, 0 cached"), std::string::npos) << s;
}

// ---------------------------------------------------------------- the command

// Runs the app with `args`, output to `log`; returns the pid (not waited for).
pid_t spawn_app(const std::vector<std::string>& args, const fs::path& log) {
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
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int run_app(const std::vector<std::string>& args, const fs::path& log) { return wait_exit(spawn_app(args, log)); }

fs::path write_config(const fs::path& dir, const std::string& base_url, const std::string& extra = "") {
  const fs::path p = dir / "llm.yaml";
  spit(p, "llm:\n  base_url: \"" + base_url + "\"\n  model: fake-chat\n  embedding_model: fake-embed\n  cache: " +
              (dir / "cache.jsonl").string() + "\n  backoff_initial_s: 0.01\n  backoff_max_s: 0.05\n  max_retries: 1\n" + extra);
  return p;
}

fs::path write_requests(const fs::path& dir, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "{\"id\": " + std::to_string(i) + ", \"prompt\": \"q" + std::to_string(i) + "\"}\n";
  spit(dir / "requests.jsonl", s);
  return dir / "requests.jsonl";
}

TEST(LlmCommand, CheckReportsBothRequestsOrOneLineNamingTheEndpoint) {
  const auto dir = scratch("check");
  FakeLlmServer server([](const FakeRequest& rq, size_t) {
    if (rq.path == "/v1/embeddings") return FakeReply{200, test::embedding_reply_body(1, 384)};
    return FakeReply{200, test::chat_reply_body("OK", 14, 1)};
  });
  const auto cfg = write_config(dir, server.base_url());
  ::setenv("OPENAI_API_KEY", "sk-check-456", 1);  // the child inherits it
  ASSERT_EQ(run_app({"llm", "check", "--config", cfg.string()}, dir / "out.txt"), 0) << slurp(dir / "out.txt");
  ::unsetenv("OPENAI_API_KEY");
  const std::string out = slurp(dir / "out.txt");
  EXPECT_NE(out.find("(API key: $OPENAI_API_KEY is set, sent as a bearer token)"), std::string::npos) << out;
  EXPECT_EQ(out.find("sk-check-456"), std::string::npos) << out;  // never printed
  for (const auto& rq : server.requests()) EXPECT_EQ(rq.authorization, "Bearer sk-check-456");
  EXPECT_NE(out.find("chat: model 'fake-chat': HTTP 200"), std::string::npos) << out;
  EXPECT_NE(out.find(": \"OK\" (finish_reason stop, 14 prompt + 1 completion tokens, served by 'fake')"), std::string::npos) << out;
  EXPECT_NE(out.find("embeddings: model 'fake-embed': HTTP 200"), std::string::npos) << out;
  EXPECT_NE(out.find("1 vector of dimension 384"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir / "cache.jsonl"));  // a check is never cached

  // Refused, HTTP error, malformed reply: exit 1 and one error line naming the endpoint.
  FakeLlmServer broken([](const FakeRequest& rq, size_t) {
    return rq.path == "/v1/embeddings" ? FakeReply{200, "{\"data\": 5}"} : FakeReply{401, "{\"error\": {\"message\": \"bad key\"}}"};
  });
  const std::string refused = "http://127.0.0.1:" + std::to_string(test::closed_port()) + "/v1";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {refused, "error: " + refused + "/chat/completions: connection refused or unreachable ("},
      {broken.base_url(), "error: " + broken.base_url() + "/chat/completions: HTTP 401: bad key"},
  };
  for (const auto& [url, msg] : cases) {
    const auto c = write_config(dir, url);
    EXPECT_EQ(run_app({"llm", "check", "--config", c.string()}, dir / "err.txt"), 1);
    const std::string err = slurp(dir / "err.txt");
    const size_t at = err.find("error: ");
    ASSERT_NE(at, std::string::npos) << err;
    EXPECT_EQ(err.substr(at).rfind(msg, 0), 0u) << err;
    EXPECT_EQ(err.find('\n', at), err.size() - 1) << err;  // one line, the last
  }
  FakeLlmServer half([](const FakeRequest& rq, size_t) {
    return rq.path == "/v1/embeddings" ? FakeReply{200, "{\"data\": 5}"} : FakeReply{200, test::chat_reply_body("OK")};
  });
  const auto c = write_config(dir, half.base_url());
  EXPECT_EQ(run_app({"llm", "check", "--config", c.string()}, dir / "err.txt"), 1);
  EXPECT_NE(slurp(dir / "err.txt").find("error: " + half.base_url() + "/embeddings: the reply has no 'data' list"), std::string::npos)
      << slurp(dir / "err.txt");
  // Config errors name the file and key.
  const auto k = write_config(dir, half.base_url(), "  api_key: sk-123\n");
  EXPECT_EQ(run_app({"llm", "check", "--config", k.string()}, dir / "err.txt"), 1);
  EXPECT_NE(slurp(dir / "err.txt").find("llm.yaml:9: key 'llm.api_key'"), std::string::npos) << slurp(dir / "err.txt");
  EXPECT_NE(slurp(dir / "err.txt").find("never read from a config file"), std::string::npos);
  const auto u = write_config(dir, "localhost:8000/v1");
  EXPECT_EQ(run_app({"llm", "check", "--config", u.string()}, dir / "err.txt"), 1);
  EXPECT_NE(slurp(dir / "err.txt").find("llm.yaml:2: key 'llm.base_url': expected an http:// or https:// URL"), std::string::npos)
      << slurp(dir / "err.txt");
}

TEST(LlmCommand, KilledBatchResumesSendingOnlyTheMissingRequests) {
  const auto dir = scratch("kill");
  constexpr int kN = 10, kDone = 3;
  std::atomic<bool> hold{true};
  FakeLlmServer server([&](const FakeRequest& rq, size_t i) {
    FakeReply r = ok_reply(rq);
    if (i == kDone && hold) r.delay_s = 60;  // the fourth request hangs until the client is killed
    return r;
  });
  const auto cfg = write_config(dir, server.base_url(), "  concurrency: 1\n");
  const auto reqs = write_requests(dir, kN);
  const pid_t pid = spawn_app({"llm", "batch", "--config", cfg.string(), "--input", reqs.string()}, dir / "first.txt");
  ASSERT_TRUE(server.wait_for(kDone + 1, 30)) << slurp(dir / "first.txt");
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  hold = false;
  // The cache holds the three answers and the dead process's claim.
  {
    const auto st = AnswerCache((dir / "cache.jsonl").string()).snapshot();
    EXPECT_EQ(st.records.size(), size_t(kDone));
  }
  ASSERT_EQ(run_app({"llm", "batch", "--config", cfg.string(), "--input", reqs.string(), "--output",
                     (dir / "answers.jsonl").string()}, dir / "second.txt"), 0)
      << slurp(dir / "second.txt");
  const auto log = server.requests();
  ASSERT_EQ(log.size(), size_t(kN + 1));  // the one in flight at the kill was sent twice, nothing else
  std::map<std::string, int> sent;
  for (const auto& rq : log) ++sent[prompt_of(rq.body)];
  for (int i = 0; i < kN; ++i) EXPECT_EQ(sent["q" + std::to_string(i)], i == kDone ? 2 : 1) << i;
  EXPECT_NE(slurp(dir / "second.txt").find("10 requests: 7 answered, 3 cached"), std::string::npos) << slurp(dir / "second.txt");
  const std::string answers = slurp(dir / "answers.jsonl");
  EXPECT_NE(answers.find("{\"id\": \"9\", \"status\": \"answered\", \"content\": \"answer to q9\"}"), std::string::npos) << answers;
  EXPECT_NE(answers.find("{\"id\": \"0\", \"status\": \"cached\", \"content\": \"answer to q0\"}"), std::string::npos) << answers;
  // The output is never overwritten.
  EXPECT_EQ(run_app({"llm", "batch", "--config", cfg.string(), "--input", reqs.string(), "--output",
                     (dir / "answers.jsonl").string()}, dir / "third.txt"), 1);
  EXPECT_NE(slurp(dir / "third.txt").find("answers.jsonl: exists"), std::string::npos);
}

TEST(LlmCommand, TwoProcessesSharingACacheNeverSendTheSameRequest) {
  const auto dir = scratch("shared");
  constexpr int kN = 24;
  // The first four requests are held until all four have arrived: with three in flight per
  // process, the fourth comes from the other process, so the two surely overlap.
  FakeLlmServer* self = nullptr;
  FakeLlmServer server([&](const FakeRequest& rq, size_t i) {
    if (i < 4) self->wait_for(4, 30);
    FakeReply r = ok_reply(rq);
    r.delay_s = 0.02;
    return r;
  });
  self = &server;
  const auto cfg = write_config(dir, server.base_url(), "  concurrency: 3\n");
  const auto reqs = write_requests(dir, kN);
  const pid_t a = spawn_app({"llm", "batch", "--config", cfg.string(), "--input", reqs.string()}, dir / "a.txt");
  const pid_t b = spawn_app({"llm", "batch", "--config", cfg.string(), "--input", reqs.string()}, dir / "b.txt");
  EXPECT_EQ(wait_exit(a), 0) << slurp(dir / "a.txt");
  EXPECT_EQ(wait_exit(b), 0) << slurp(dir / "b.txt");
  std::map<std::string, int> sent;
  for (const auto& rq : server.requests()) ++sent[rq.body];
  EXPECT_EQ(sent.size(), size_t(kN));
  for (const auto& [body, n] : sent) EXPECT_EQ(n, 1) << body;
  const auto st = AnswerCache((dir / "cache.jsonl").string()).snapshot();
  EXPECT_EQ(st.records.size(), size_t(kN));
  EXPECT_EQ(st.duplicates, 0u);
  // Both sent some of the requests and found the other's answers for the rest.
  for (const char* f : {"a.txt", "b.txt"}) {
    const std::string out = slurp(dir / f);
    EXPECT_EQ(out.find(" 0 answered"), std::string::npos) << out;
    EXPECT_EQ(out.find(" 0 cached"), std::string::npos) << out;
  }
}

TEST(LlmCommand, BatchErrorsEndWithOneLineAndLeaveTheCacheConsistent) {
  const auto dir = scratch("batch_errors");
  const auto reqs = write_requests(dir, 3);
  FakeLlmServer good([](const FakeRequest& rq, size_t) { return ok_reply(rq); });
  FakeLlmServer missing([](const FakeRequest&, size_t) { return FakeReply{404, "{\"detail\": \"Not Found\"}"}; });
  FakeLlmServer malformed([](const FakeRequest&, size_t) { return FakeReply{200, "{\"id\": \"x\"}"}; });
  const std::string refused = "http://127.0.0.1:" + std::to_string(test::closed_port()) + "/v1";
  struct Case {
    std::string url, extra, message;
  };
  const std::vector<Case> cases = {
      {refused, "", refused + "/chat/completions: connection refused or unreachable ("},
      {missing.base_url() + "/v9", "", missing.base_url() + "/v9/chat/completions: HTTP 404: Not Found; 0 of 3 requests"},
      {malformed.base_url(), "", "3 replies are unparseable (cached: they were paid for); the first: " + malformed.base_url() +
                                     "/chat/completions: the reply has no 'choices'"},
      {good.base_url(), "  max_requests: 1\n", good.base_url() + "/chat/completions: the request budget is spent "
                                                "(llm.max_requests = 1); 1 of 3 requests have an answer in "},
  };
  for (const auto& c : cases) {
    fs::remove(dir / "cache.jsonl");
    const auto cfg = write_config(dir, c.url, c.extra);
    EXPECT_EQ(run_app({"llm", "batch", "--config", cfg.string(), "--input", reqs.string()}, dir / "out.txt"), 1);
    const std::string out = slurp(dir / "out.txt");
    const size_t at = out.find("error: ");
    ASSERT_NE(at, std::string::npos) << out;
    EXPECT_EQ(out.substr(at + 7).rfind(c.message, 0), 0u) << out;
    EXPECT_EQ(out.find('\n', at), out.size() - 1) << out;  // one line, the last
    // Consistent: the cache reads back without warnings and holds no open claim.
    std::ostringstream warn;
    const auto st = AnswerCache((dir / "cache.jsonl").string(), &warn).snapshot();
    EXPECT_EQ(warn.str(), "");
    for (const auto& [k, slot] : st.slots) EXPECT_FALSE(slot.claim) << c.url;
  }
  // A bad input line names the file and line.
  const auto cfg = write_config(dir, good.base_url());
  spit(dir / "bad.jsonl", "{\"id\": 1, \"prompt\": \"a\"}\n{\"id\": 2}\n");
  EXPECT_EQ(run_app({"llm", "batch", "--config", cfg.string(), "--input", (dir / "bad.jsonl").string()}, dir / "out.txt"), 1);
  EXPECT_NE(slurp(dir / "out.txt").find("bad.jsonl:2: expected a 'prompt' string or a 'messages' list"), std::string::npos)
      << slurp(dir / "out.txt");
}

TEST(LlmCommand, ImportRecordedAnswers) {
  const auto dir = scratch("import");
  const auto cfg = write_config(dir, "");
  const std::string src = std::string(RECDISTILL_SOURCE_DIR) + "/data/alkdrec-ml/llm_answers.jsonl";
  const std::vector<std::string> args = {"llm", "import", "--config", cfg.string(), "--answers", src, "--template-id",
                                         "alkdrec-ml-recorded", "--model", "gpt-4-turbo-2024-04-09"};
  ASSERT_EQ(run_app(args, dir / "out.txt"), 0) << slurp(dir / "out.txt");
  EXPECT_NE(slurp(dir / "out.txt").find("imported 4992 of 4992 recorded answers"), std::string::npos) << slurp(dir / "out.txt");
  ASSERT_EQ(run_app(args, dir / "out.txt"), 0);
  EXPECT_NE(slurp(dir / "out.txt").find("imported 0 of 4992 recorded answers"), std::string::npos);
}

}  // namespace
}  // namespace recdistill
