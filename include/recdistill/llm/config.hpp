// recdistill/llm/config.hpp: the `llm` section of a config: where an OpenAI-compatible endpoint
// is, which models it serves, and the limits a batch of requests keeps to (docs/llm.md).
//
// The API key is never a config value: `llm.api_key_env` names the environment variable that
// holds it, and setting `llm.api_key` is an error saying so.
#pragma once
#include <string>

#include "recdistill/core/error.hpp"
#include "recdistill/core/keys.hpp"

namespace recdistill::llm {

using keys::Key;

struct LlmConfig {
  std::string base_url;  // "" = no live endpoint (cached and recorded answers only)
  std::string model;
  std::string embedding_base_url;  // "" = base_url
  std::string embedding_model;
  std::string api_key_env = "OPENAI_API_KEY";
  double temperature = 0.0;
  int max_tokens = 0;  // 0 = the server's default (no max_tokens field is sent)
  double timeout_s = 120;
  double connect_timeout_s = 10;
  int max_retries = 5;
  double backoff_initial_s = 1.0;
  double backoff_max_s = 60.0;
  double retry_after_max_s = 300.0;
  int concurrency = 4;
  int64_t max_requests = 0;      // 0 = no limit
  int64_t max_total_tokens = 0;  // 0 = no limit
  double max_cost_usd = 0;       // 0 = no limit
  double price_input_per_mtok = 0;   // USD per million prompt tokens
  double price_output_per_mtok = 0;  // USD per million completion tokens
  std::string cache = "llm_cache.jsonl";
  int embedding_batch = 32;
  int profile_max_items = 100;  // recdistill profiles (llm/profiles.hpp)

  template <class V>
  void keys(V& v) {
    v(base_url, Key("llm", "base_url", "OpenAI-compatible endpoint with its version path (http://127.0.0.1:8000/v1); \"\" = none, answers come from the cache only"));
    v(model, Key("llm", "model", "chat model name as the server knows it"));
    v(embedding_base_url, Key("llm", "embedding_base_url", "endpoint of the embedding model; \"\" = llm.base_url"));
    v(embedding_model, Key("llm", "embedding_model", "embedding model name; \"\" = no embedding requests"));
    v(api_key_env, Key("llm", "api_key_env", "environment variable holding the API key (sent as a bearer token; never logged); unset = no key"));
    v.declared(Key("llm", "api_key", "the API key itself")
                   .refuse("an API key is never read from a config file; put it in the environment "
                                    "variable that llm.api_key_env names (default OPENAI_API_KEY)"));
    v(temperature, Key("llm", "temperature", "sampling temperature of chat requests").range(0, 2));
    v(max_tokens, Key("llm", "max_tokens", "completion token limit per chat request; 0 = the server's default").range(0, 1 << 24));
    v(timeout_s, Key("llm", "timeout_s", "per-request time limit, connection included (seconds)").range(0.001, 86400));
    v(connect_timeout_s, Key("llm", "connect_timeout_s", "time limit for the connection alone (seconds)").range(0.001, 3600));
    v(max_retries, Key("llm", "max_retries", "retries after a connection error, a timeout, 429 or 5xx").range(0, 100));
    v(backoff_initial_s, Key("llm", "backoff_initial_s", "first retry delay; doubles per retry, with jitter in [50%, 100%]").range(0, 3600));
    v(backoff_max_s, Key("llm", "backoff_max_s", "the longest retry delay without Retry-After").range(0, 86400));
    v(retry_after_max_s, Key("llm", "retry_after_max_s", "the longest Retry-After honoured; a longer one fails the request").range(0, 86400));
    v(concurrency, Key("llm", "concurrency", "requests in flight at once").range(1, 1024));
    v(max_requests, Key("llm", "max_requests", "request budget of one batch (requests sent, retries not counted); 0 = none").range(0, 1e15));
    v(max_total_tokens, Key("llm", "max_total_tokens", "token budget of one batch (prompt + completion, from the replies' usage); 0 = none").range(0, 1e15));
    v(max_cost_usd, Key("llm", "max_cost_usd", "cost budget of one batch in USD (from the prices below); 0 = none").range(0, 1e12));
    v(price_input_per_mtok, Key("llm", "price_input_per_mtok", "USD per million prompt tokens").range(0, 1e6));
    v(price_output_per_mtok, Key("llm", "price_output_per_mtok", "USD per million completion tokens").range(0, 1e6));
    v(cache, Key("llm", "cache", "the answer cache (JSON lines, append-only): a cached request is never sent again"));
    v(embedding_batch, Key("llm", "embedding_batch", "texts per embedding request").range(1, 1 << 16));
    v(profile_max_items, Key("llm", "profile_max_items", "`recdistill profiles`: training items per prompt; a longer history is halved recursively, each part profiled, then the parts merged").range(1, 1e6));
  }

  bool live() const { return !base_url.empty(); }
  const std::string& embeddings_url() const { return embedding_base_url.empty() ? base_url : embedding_base_url; }
};

// "http://host:port/v1" without a trailing slash; "" stays "". `key` names the config key.
inline std::string checked_base_url(const std::string& url, const std::string& key) {
  if (url.empty()) return url;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    fail("key '", key, "': expected an http:// or https:// URL, found '", url, "'");
  const size_t host = url.find("://") + 3;
  if (host >= url.size() || url[host] == '/') fail("key '", key, "': the URL '", url, "' has no host");
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20) fail("key '", key, "': the URL '", url, "' contains a space or control character");
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  return u;
}

}  // namespace recdistill::llm
