// recdistill/llm/client.hpp: the client of OpenAI-compatible endpoints (vLLM, llama.cpp's
// server, Ollama, hosted APIs) on libcurl, shared by both methods (docs/llm.md).
//
//   Client c(cfg);                                   // llm.* keys (llm/config.hpp)
//   AnswerCache cache(cfg.cache);
//   auto reqs = {chat_request(cfg, "profile", "short-v1", {{"user", prompt}}), ...};
//   BatchReport rep = c.run(reqs, &cache);          // cached keys are never sent again
//   if (!rep.stop.empty()) fail(rep.stop);           // one line: the endpoint and the cause
//
// A batch sends the requests whose keys the cache does not hold, `llm.concurrency` at a time,
// each claimed in the cache first (so two processes sharing it never send the same request),
// retried on connection errors, timeouts, 429 and 5xx with exponential backoff and jitter
// (Retry-After honoured), within the request, token and cost budgets. A failure of the
// endpoint (unreachable, 401/403/404, still failing after the retries) or an exhausted
// budget stops the batch: no further request is sent, and `stop` says why in one line. A
// request the server refuses on its own (other 4xx) fails alone. Every completed reply is
// cached, a malformed one too (as `unparseable`: it was paid for).
#pragma once
#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/progress.hpp"
#include "recdistill/llm/cache.hpp"
#include "recdistill/llm/config.hpp"
#include "recdistill/llm/protocol.hpp"
#include "recdistill/llm/sha256.hpp"

namespace recdistill::llm {

// ---- one HTTP exchange ----

struct HttpReply {
  long status = 0;          // 0 when no HTTP reply came
  std::string body;
  std::string retry_after;  // the Retry-After header ("" when absent)
  CURLcode code = CURLE_OK;
  std::string curl_error;
  double seconds = 0;
};

// One libcurl easy handle (one per worker thread; handles are not shared between threads).
class Http {
 public:
  Http() {
    static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);  // once, thread-safe
    if (global != CURLE_OK) fail("libcurl failed to initialise: ", curl_easy_strerror(global));
    h_ = curl_easy_init();
    if (!h_) fail("libcurl: cannot create a handle");
  }
  ~Http() { curl_easy_cleanup(h_); }
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  HttpReply post(const std::string& url, const std::string& body, const std::string& api_key, double timeout_s,
                 double connect_timeout_s) {
    HttpReply r;
    curl_easy_reset(h_);
    char err[CURL_ERROR_SIZE] = {};
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    if (!api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + api_key).c_str());
    curl_easy_setopt(h_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h_, CURLOPT_POST, 1L);
    curl_easy_setopt(h_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h_, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
    curl_easy_setopt(h_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h_, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
    curl_easy_setopt(h_, CURLOPT_TIMEOUT_MS, long(std::ceil(timeout_s * 1000)));
    curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT_MS, long(std::ceil(connect_timeout_s * 1000)));
    curl_easy_setopt(h_, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, &Http::on_body);
    curl_easy_setopt(h_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(h_, CURLOPT_HEADERFUNCTION, &Http::on_header);
    curl_easy_setopt(h_, CURLOPT_HEADERDATA, &r.retry_after);
    curl_easy_setopt(h_, CURLOPT_USERAGENT, "recdistill");
    const auto t0 = std::chrono::steady_clock::now();
    r.code = curl_easy_perform(h_);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r.code == CURLE_OK) curl_easy_getinfo(h_, CURLINFO_RESPONSE_CODE, &r.status);
    r.curl_error = err[0] ? err : curl_easy_strerror(r.code);
    curl_slist_free_all(headers);
    curl_easy_setopt(h_, CURLOPT_ERRORBUFFER, nullptr);
    return r;
  }

 private:
  static constexpr size_t kMaxBody = size_t(256) << 20;  // a reply larger than 256 MiB is refused
  static size_t on_body(char* p, size_t size, size_t n, void* ud) {
    auto* s = static_cast<std::string*>(ud);
    if (s->size() + size * n > kMaxBody) return 0;  // libcurl then fails with CURLE_WRITE_ERROR
    s->append(p, size * n);
    return size * n;
  }
  static size_t on_header(char* p, size_t size, size_t n, void* ud) {
    const std::string_view line(p, size * n);
    constexpr std::string_view name = "retry-after:";
    if (line.size() > name.size()) {
      bool match = true;
      for (size_t i = 0; i < name.size(); ++i) match = match && std::tolower(static_cast<unsigned char>(line[i])) == name[i];
      if (match) *static_cast<std::string*>(ud) = std::string(line.substr(name.size()));
    }
    return size * n;
  }
  CURL* h_;
};

// ---- requests and results ----

struct Request {
  CacheKey key;        // request_key = "sha256:" + SHA-256(body)
  std::string url;     // {base_url}/chat/completions or {base_url}/embeddings
  std::string body;
  size_t n_inputs = 0;  // embeddings: the inputs in `body` (0 = a chat request)
};

inline Request make_request(std::string purpose, std::string template_id, std::string model, std::string url,
                            std::string body, size_t n_inputs = 0) {
  Request r;
  r.key = CacheKey{std::move(purpose), std::move(template_id), std::move(model), "sha256:" + sha256_hex(body)};
  r.url = std::move(url);
  r.body = std::move(body);
  r.n_inputs = n_inputs;
  return r;
}

inline Request chat_request(const LlmConfig& cfg, std::string purpose, std::string template_id,
                            const std::vector<Message>& messages) {
  return make_request(std::move(purpose), std::move(template_id), cfg.model,
                      checked_base_url(cfg.base_url, "llm.base_url") + "/chat/completions",
                      chat_body(cfg.model, messages, cfg.temperature, cfg.max_tokens));
}

// `texts` in requests of llm.embedding_batch inputs each.
inline std::vector<Request> embedding_requests(const LlmConfig& cfg, const std::string& purpose,
                                               const std::string& template_id, const std::vector<std::string>& texts) {
  std::vector<Request> out;
  const std::string url = checked_base_url(cfg.embeddings_url(), "llm.embedding_base_url") + "/embeddings";
  for (size_t i = 0; i < texts.size(); i += size_t(cfg.embedding_batch)) {
    const std::vector<std::string> part(texts.begin() + long(i),
                                        texts.begin() + long(std::min(texts.size(), i + size_t(cfg.embedding_batch))));
    out.push_back(make_request(purpose, template_id, cfg.embedding_model, url,
                               embeddings_body(cfg.embedding_model, part), part.size()));
  }
  return out;
}

enum class Status {
  answered,     // sent now; the reply is cached (ok)
  cached,       // the cache held the answer (ok or recorded): not sent
  unparseable,  // a completed reply (now or cached) that is not a valid reply: record.error says why
  failed,       // no answer: `error` says why (not cached; a later batch sends it again)
  not_sent,     // the batch stopped first (budget, endpoint failure)
};

inline const char* status_name(Status s) {
  switch (s) {
    case Status::answered: return "answered";
    case Status::cached: return "cached";
    case Status::unparseable: return "unparseable";
    case Status::failed: return "failed";
    case Status::not_sent: return "not_sent";
  }
  return "?";
}

struct Result {
  Status status = Status::not_sent;
  CacheRecord record;  // answered, cached, unparseable
  std::string error;   // failed; unparseable: the reply's defect
};

struct BatchReport {
  std::vector<Result> results;  // one per request, in order
  int64_t answered = 0, cached = 0, unparseable = 0, failed = 0, not_sent = 0;
  int64_t sent = 0, retries = 0;  // requests sent (first attempts) and retries
  Usage usage;                    // tokens of the replies received now
  double cost_usd = 0, seconds = 0;
  std::string stop;  // why the batch ended before trying every request; "" = it did not

  bool all_answered() const { return failed == 0 && not_sent == 0 && unparseable == 0; }
  std::string summary() const {
    return cat(results.size(), " requests: ", answered, " answered, ", cached, " cached, ", unparseable, " unparseable, ",
               failed, " failed, ", not_sent, " not sent; ", retries, " retries, ", usage.prompt_tokens, " prompt + ",
               usage.completion_tokens, " completion tokens, $", io::json_number(std::round(cost_usd * 1e6) / 1e6),
               ", ", io::json_number(std::round(seconds * 100) / 100), " s");
  }
};

struct BatchOptions {
  std::ostream* progress = nullptr;  // a progress bar with rate and ETA (nullptr = none)
  io::ProgressOptions progress_options = {};
};

// ---- the client ----

// Releases a claim that is still open when a request's handling ends without an answer,
// exceptions included (a cache error, a failing callback), so no claim outlives its sender.
struct ClaimGuard {
  AnswerCache* cache;
  CacheKey key;
  std::string token;  // "" = nothing to release
  void release() {
    if (cache && !token.empty()) {
      const std::string t = std::move(token);
      token.clear();
      cache->release(key, t);
    }
  }
  ~ClaimGuard() {
    try {
      release();
    } catch (...) {  // a cache that cannot be written: the claim expires on its own
    }
  }
};

// Whether a request URL names an endpoint (a base_url of "" gives "/chat/completions").
inline bool endpoint_of(const std::string& url) { return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0; }

class Client {
 public:
  explicit Client(LlmConfig cfg) : cfg_(std::move(cfg)) {
    // A peer that closes a TLS connection mid-write would raise SIGPIPE (libcurl with
    // CURLOPT_NOSIGNAL does not block it); unless the program handles it, ignore it.
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    cfg_.base_url = checked_base_url(cfg_.base_url, "llm.base_url");
    cfg_.embedding_base_url = checked_base_url(cfg_.embedding_base_url, "llm.embedding_base_url");
    if (const char* k = std::getenv(cfg_.api_key_env.c_str())) api_key_ = k;
  }

  const LlmConfig& config() const { return cfg_; }
  bool has_api_key() const { return !api_key_.empty(); }

  // Called with each wait before a retry, in seconds (tests check backoff and Retry-After).
  std::function<void(double)> on_retry_wait;

  // The outcome of one request after its retries, without the cache (`llm check`).
  struct Exchange {
    HttpReply http;      // the last attempt
    int attempts = 0;
    std::string error;   // "" when a 2xx reply came; else one line: the URL and the cause
    bool endpoint_down = false;  // the error concerns the endpoint, not this request
  };

  Exchange send(const std::string& url, const std::string& body) {
    Http http;
    std::mt19937_64 rng(std::random_device{}());
    std::atomic<bool> never{false};
    return exchange(http, rng, url, body, never);
  }

  // Sends the requests the cache lacks (cache may be nullptr: nothing is cached then).
  BatchReport run(const std::vector<Request>& reqs, AnswerCache* cache, const BatchOptions& opt = {}) {
    BatchReport rep;
    rep.results.resize(reqs.size());
    const auto t0 = std::chrono::steady_clock::now();
    std::atomic<size_t> next{0};
    std::deque<size_t> deferred;  // requests another sender held when first met (under mu)
    std::atomic<bool> stop{false};
    std::mutex mu;  // rep's counters, the progress bar
    std::unique_ptr<io::Progress> bar;
    if (opt.progress) {
      io::ProgressOptions po = opt.progress_options;
      po.unit = "requests";
      bar = std::make_unique<io::Progress>(*opt.progress, po);
      bar->begin("llm", int64_t(reqs.size()));
    }
    int64_t done = 0;
    const auto finish_one = [&](size_t i, Result res) {
      std::lock_guard<std::mutex> g(mu);
      switch (res.status) {
        case Status::answered: ++rep.answered; break;
        case Status::cached: ++rep.cached; break;
        case Status::unparseable: ++rep.unparseable; break;
        case Status::failed: ++rep.failed; break;
        case Status::not_sent: ++rep.not_sent; break;
      }
      rep.results[i] = std::move(res);
      ++done;
      if (bar)
        bar->update(done, cat(rep.cached, " cached, ", rep.failed, " failed, ", rep.usage.total(), " tokens, $",
                              io::json_number(std::round(rep.cost_usd * 1e4) / 1e4)));
    };
    const auto stop_with = [&](const std::string& why) {
      std::lock_guard<std::mutex> g(mu);
      if (rep.stop.empty()) rep.stop = why;
      stop = true;
    };
    // Takes one request's share of the budgets; false (and the batch stops) when one is spent.
    const auto take_budget = [&](const std::string& url) {
      std::lock_guard<std::mutex> g(mu);
      std::string why;
      if (cfg_.max_requests > 0 && rep.sent >= cfg_.max_requests)
        why = cat(url, ": the request budget is spent (llm.max_requests = ", cfg_.max_requests, ")");
      else if (cfg_.max_total_tokens > 0 && rep.usage.total() >= cfg_.max_total_tokens)
        why = cat(url, ": the token budget is spent (", rep.usage.total(), " tokens, llm.max_total_tokens = ",
                  cfg_.max_total_tokens, ")");
      else if (cfg_.max_cost_usd > 0 && rep.cost_usd >= cfg_.max_cost_usd)
        why = cat(url, ": the cost budget is spent ($", rep.cost_usd, ", llm.max_cost_usd = ", cfg_.max_cost_usd, ")");
      if (!why.empty()) {
        if (rep.stop.empty()) rep.stop = why;
        stop = true;
        return false;
      }
      ++rep.sent;
      return true;
    };
    // How long a claim may stay open: every attempt and every wait between them.
    const double claim_s = (cfg_.timeout_s + std::max(cfg_.backoff_max_s, cfg_.retry_after_max_s)) * (cfg_.max_retries + 1) + 60;

    const auto worker = [&]() {
      Http http;
      std::mt19937_64 rng(std::random_device{}());
      for (;;) {
        // The next request in order; when none is left, one put aside because another sender
        // held it (waited for now).
        size_t i = next.fetch_add(1);
        bool waited_for = false;
        if (i >= reqs.size()) {
          std::lock_guard<std::mutex> g(mu);
          if (deferred.empty()) break;
          i = deferred.front();
          deferred.pop_front();
          waited_for = true;
        }
        const Request& rq = reqs[i];
        Result res;
        const auto from_cache = [&](CacheRecord a) {
          res.status = a.status == "unparseable" ? Status::unparseable : Status::cached;
          res.error = a.error;
          res.record = std::move(a);
        };
        // Once the batch is stopping, nothing is claimed or sent: cached answers still count.
        if (stop || !endpoint_of(rq.url)) {
          if (cache)
            if (auto a = cache->find(rq.key)) from_cache(std::move(*a));
          if (res.status == Status::not_sent && !endpoint_of(rq.url))
            stop_with(cat("no LLM endpoint is configured (llm.base_url is empty): ", rq.key.text(),
                          " has no cached answer and cannot be sent"));
          finish_one(i, std::move(res));
          continue;
        }
        ClaimGuard claim{cache, rq.key, ""};
        if (cache) {
          // A key another sender holds is put aside the first time (other requests go first),
          // then waited for until its answer comes or its claim ends.
          bool put_aside = false;
          for (;;) {
            AnswerCache::ClaimResult c = cache->claim(rq.key, claim_s);
            if (c.state == AnswerCache::ClaimState::answered) {
              from_cache(std::move(c.answer));
              break;
            }
            if (c.state == AnswerCache::ClaimState::claimed) {
              claim.token = c.token;
              break;
            }
            if (stop) break;
            if (!waited_for) {
              std::lock_guard<std::mutex> g(mu);
              deferred.push_back(i);
              put_aside = true;
              break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
          if (put_aside) continue;
          if (claim.token.empty()) {
            finish_one(i, std::move(res));
            continue;
          }
        }
        if (stop || !take_budget(rq.url)) {
          claim.release();
          finish_one(i, std::move(res));  // not_sent
          continue;
        }
        Exchange ex = exchange(http, rng, rq.url, rq.body, stop);
        {
          std::lock_guard<std::mutex> g(mu);
          rep.retries += std::max(0, ex.attempts - 1);
        }
        if (!ex.error.empty()) {
          claim.release();
          res.status = Status::failed;
          res.error = ex.error;
          if (ex.endpoint_down) stop_with(ex.error);
          finish_one(i, std::move(res));
          continue;
        }
        CacheRecord rec;
        rec.key = rq.key;
        rec.url = rq.url;
        rec.request = rq.body;
        rec.response = ex.http.body;
        rec.latency_s = ex.http.seconds;
        // Usage counts whether or not the reply parses (it was paid for).
        const Usage used = usage_of(ex.http.body);
        rec.prompt_tokens = used.prompt_tokens;
        rec.completion_tokens = used.completion_tokens;
        std::string defect;
        if (rq.n_inputs == 0) {
          if (auto parsed = parse_chat_reply(ex.http.body); auto* e = std::get_if<ReplyError>(&parsed)) defect = e->what;
        } else {
          if (auto parsed = parse_embedding_reply(ex.http.body, rq.n_inputs); auto* e = std::get_if<ReplyError>(&parsed))
            defect = e->what;
        }
        rec.cost_usd = (double(rec.prompt_tokens) * cfg_.price_input_per_mtok +
                        double(rec.completion_tokens) * cfg_.price_output_per_mtok) / 1e6;
        rec.status = defect.empty() ? "ok" : "unparseable";
        rec.error = defect.empty() ? "" : cat(rq.url, ": ", defect);
        if (cache) {
          cache->complete(rec);
          claim.token.clear();  // the answer ended the claim
        }
        {
          std::lock_guard<std::mutex> g(mu);
          rep.usage.prompt_tokens += rec.prompt_tokens;
          rep.usage.completion_tokens += rec.completion_tokens;
          rep.cost_usd += rec.cost_usd;
        }
        res.status = defect.empty() ? Status::answered : Status::unparseable;
        res.error = rec.error;
        res.record = std::move(rec);
        finish_one(i, std::move(res));
      }
    };
    const size_t n_workers = std::min<size_t>(size_t(std::max(1, cfg_.concurrency)), std::max<size_t>(1, reqs.size()));
    std::exception_ptr first_error;  // a cache that cannot be written ends the batch
    const auto guarded = [&]() {
      try {
        worker();
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!first_error) first_error = std::current_exception();
        stop = true;
      }
    };
    std::vector<std::thread> pool;
    for (size_t w = 1; w < n_workers; ++w) pool.emplace_back(guarded);
    guarded();
    for (auto& t : pool) t.join();
    if (first_error) std::rethrow_exception(first_error);
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (bar) bar->finish(cat("llm: ", rep.summary()));
    return rep;
  }

 private:
  static bool retryable(CURLcode c) {
    switch (c) {
      case CURLE_COULDNT_CONNECT:
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
      case CURLE_COULDNT_RESOLVE_HOST:  // a DNS blip; a misspelt host stops the batch after the retries
      case CURLE_SSL_CONNECT_ERROR: return true;
      default: return false;
    }
  }

  static std::string transport_cause(const HttpReply& r, double timeout_s) {
    switch (r.code) {
      case CURLE_COULDNT_CONNECT: return cat("connection refused or unreachable (", r.curl_error, ")");
      case CURLE_OPERATION_TIMEDOUT: return cat("no complete reply within llm.timeout_s = ", timeout_s, " s (", r.curl_error, ")");
      case CURLE_COULDNT_RESOLVE_HOST: return cat("unknown host (", r.curl_error, ")");
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL: return cat("not a usable URL (", r.curl_error, ")");
      case CURLE_WRITE_ERROR: return "the reply is larger than 256 MiB";
      default: return r.curl_error;
    }
  }

  // One request with its retries. `stop` cuts the waits short when the batch is stopping.
  Exchange exchange(Http& http, std::mt19937_64& rng, const std::string& url, const std::string& body,
                    const std::atomic<bool>& stop) {
    Exchange ex;
    for (int attempt = 0;; ++attempt) {
      ex.http = http.post(url, body, api_key_, cfg_.timeout_s, cfg_.connect_timeout_s);
      ex.attempts = attempt + 1;
      const HttpReply& r = ex.http;
      if (r.code == CURLE_OK && r.status >= 200 && r.status < 300) {
        ex.error.clear();
        return ex;
      }
      const bool transport = r.code != CURLE_OK;
      const bool again = transport ? retryable(r.code) : (r.status == 429 || r.status >= 500);
      const std::string tries = ex.attempts > 1 ? cat(" (", ex.attempts, " attempts)") : "";
      if (transport) {
        ex.error = cat(url, ": ", transport_cause(r, cfg_.timeout_s), tries);
      } else {
        ex.error = cat(url, ": HTTP ", r.status, ": ", error_text(r.body), tries);
      }
      // The endpoint as a whole is unusable: unreachable, wrong path or model, no access.
      // (A redirect too: the client does not follow one, so base_url is not the endpoint's.)
      ex.endpoint_down = transport || again || (r.status >= 300 && r.status < 400) || r.status == 401 ||
                         r.status == 403 || r.status == 404 || r.status == 405;
      if (!again || attempt >= cfg_.max_retries || stop) return ex;
      double wait = -1;
      if (!transport && !r.retry_after.empty())
        wait = retry_after_seconds(r.retry_after, epoch_seconds(), [](const std::string& d) {
          const time_t t = curl_getdate(d.c_str(), nullptr);
          return t < 0 ? -1.0 : double(t);
        });
      if (wait > cfg_.retry_after_max_s) {
        ex.error = cat(url, ": HTTP ", r.status, ": the server asks to wait ", wait, " s, more than llm.retry_after_max_s = ",
                       cfg_.retry_after_max_s, " s", tries);
        return ex;
      }
      if (wait < 0) {  // exponential backoff with jitter in [50%, 100%]
        const double full = std::min(cfg_.backoff_max_s, cfg_.backoff_initial_s * std::ldexp(1.0, std::min(attempt, 60)));
        wait = full * std::uniform_real_distribution<double>(0.5, 1.0)(rng);
      }
      if (on_retry_wait) on_retry_wait(wait);
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait);
      while (std::chrono::steady_clock::now() < until && !stop)
        std::this_thread::sleep_for(std::min<std::chrono::duration<double>>(until - std::chrono::steady_clock::now(),
                                                                            std::chrono::milliseconds(50)));
      if (stop) return ex;  // the batch is stopping: no further attempt
    }
  }

  LlmConfig cfg_;
  std::string api_key_;  // never logged, never written
};

// The chat reply of a cached or fresh result (ok or recorded records only).
inline std::variant<ChatReply, ReplyError> chat_reply_of(const Result& r) { return parse_chat_reply(r.record.response); }

// The embeddings of `texts` (requests built by embedding_requests, run as one batch, in order);
// throws with the batch's stop reason or the first failure when any text has no embedding.
inline std::vector<std::vector<float>> embed(Client& client, AnswerCache* cache, const std::string& purpose,
                                             const std::string& template_id, const std::vector<std::string>& texts,
                                             const BatchOptions& opt = {}) {
  const auto reqs = embedding_requests(client.config(), purpose, template_id, texts);
  const BatchReport rep = client.run(reqs, cache, opt);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Result& r = rep.results[i];
    if (r.status != Status::answered && r.status != Status::cached)
      fail(!rep.stop.empty() ? rep.stop : !r.error.empty() ? r.error : cat("embedding request ", i, " was not answered"));
    auto parsed = parse_embedding_reply(r.record.response, reqs[i].n_inputs);
    if (auto* e = std::get_if<ReplyError>(&parsed)) fail(cache ? cache->path() : "llm", ": cached embedding reply: ", e->what);
    for (auto& v : std::get<EmbeddingReply>(parsed).embeddings) out.push_back(std::move(v));
  }
  return out;
}

}  // namespace recdistill::llm
