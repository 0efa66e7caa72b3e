// recdistill/llm/protocol.hpp: the OpenAI chat-completions and embeddings protocol as bytes:
// request bodies (one exact text per request, so its SHA-256 keys the answer cache) and the
// parsers of the replies (untrusted bytes: tests/fuzz/llm_reply_fuzz.cpp). No network here.
//
//   POST {base_url}/chat/completions  {"model", "messages": [{"role", "content"}], "temperature"[, "max_tokens"]}
//     -> {"choices": [{"message": {"content": "..."}, "finish_reason"}], "usage": {"prompt_tokens", "completion_tokens"}}
//   POST {base_url}/embeddings        {"model", "input": ["...", ...]}
//     -> {"data": [{"index": i, "embedding": [...]}, ...], "usage": {"prompt_tokens"}}
#pragma once
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/log.hpp"

namespace recdistill::llm {

struct Message {
  std::string role;  // system | user | assistant
  std::string content;
};

// The exact request body of a chat completion (fields in a fixed order; max_tokens omitted when 0).
inline std::string chat_body(const std::string& model, const std::vector<Message>& messages, double temperature,
                             int max_tokens) {
  std::string b = "{\"model\": " + io::json_quote(model) + ", \"messages\": [";
  for (size_t i = 0; i < messages.size(); ++i)
    b += (i ? ", " : "") + std::string("{\"role\": ") + io::json_quote(messages[i].role) +
         ", \"content\": " + io::json_quote(messages[i].content) + "}";
  b += "], \"temperature\": " + io::json_number(temperature);
  if (max_tokens > 0) b += ", \"max_tokens\": " + std::to_string(max_tokens);
  return b + "}";
}

inline std::string embeddings_body(const std::string& model, const std::vector<std::string>& inputs) {
  std::string b = "{\"model\": " + io::json_quote(model) + ", \"input\": [";
  for (size_t i = 0; i < inputs.size(); ++i) b += (i ? ", " : "") + io::json_quote(inputs[i]);
  return b + "]}";
}

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total() const { return prompt_tokens + completion_tokens; }
};

struct ChatReply {
  std::string content;
  std::string finish_reason;  // "" when the server gave none
  std::string model;          // the model the server says answered ("" when absent)
  Usage usage;
};

struct EmbeddingReply {
  std::vector<std::vector<float>> embeddings;  // in input order
  Usage usage;
};

// A reply body that is not what the protocol promises; `what` is one line.
struct ReplyError {
  std::string what;
};

namespace detail {

// At most n bytes of s on one line (control characters become spaces), cut at a UTF-8
// character boundary, with "..." when cut.
inline std::string clip(std::string_view s, size_t n = 200) {
  size_t end = std::min(n, s.size());
  while (end > 0 && end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  std::string o;
  for (char c : s.substr(0, end)) o += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  return end < s.size() ? o + "..." : o;
}

// A non-negative integer field of `usage` (absent = 0; servers differ in what they report).
inline int64_t usage_field(simdjson::dom::object usage, const char* key) {
  simdjson::dom::element e;
  if (usage.at_key(key).get(e)) return 0;
  int64_t i = 0;
  if (!e.get_int64().get(i) && i >= 0) return i;
  uint64_t u = 0;
  if (!e.get_uint64().get(u)) return int64_t(std::min<uint64_t>(u, uint64_t(INT64_MAX)));
  return 0;
}

inline Usage read_usage(simdjson::dom::object root) {
  Usage u;
  simdjson::dom::object usage;
  if (root.at_key("usage").get_object().get(usage)) return u;
  u.prompt_tokens = usage_field(usage, "prompt_tokens");
  u.completion_tokens = usage_field(usage, "completion_tokens");
  return u;
}

// The root object of a reply body, or the reason it is not one.
inline std::optional<ReplyError> parse_root(simdjson::dom::parser& parser, std::string_view body,
                                            simdjson::dom::object& root) {
  simdjson::dom::element doc;
  if (const auto err = parser.parse(body.data(), body.size(), true).get(doc))
    return ReplyError{cat("the reply is not valid JSON (", simdjson::error_message(err), "): '", clip(body, 80), "'")};
  if (doc.get_object().get(root)) return ReplyError{cat("the reply is not a JSON object: '", clip(body, 80), "'")};
  // A 200 reply carrying an error object (some servers do this).
  simdjson::dom::element err;
  if (!root.at_key("error").get(err) && !err.is_null()) {
    std::string_view msg;
    simdjson::dom::object eo;
    if (!err.get_object().get(eo) && !eo.at_key("message").get_string().get(msg))
      return ReplyError{cat("the server answered with an error: ", clip(msg))};
    if (!err.get_string().get(msg)) return ReplyError{cat("the server answered with an error: ", clip(msg))};
    return ReplyError{"the server answered with an error object"};
  }
  return std::nullopt;
}

}  // namespace detail

// The usage a reply body reports, whatever else is wrong with it (a paid reply counts
// toward the token budget even when it is unparseable); zeros when there is none.
inline Usage usage_of(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object root;
  if (parser.parse(body.data(), body.size(), true).get(doc) || doc.get_object().get(root)) return {};
  return detail::read_usage(root);
}

// Parses a chat-completions reply body; a ReplyError says what is missing or wrong.
inline std::variant<ChatReply, ReplyError> parse_chat_reply(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (auto e = detail::parse_root(parser, body, root)) return *e;
  simdjson::dom::array choices;
  simdjson::dom::element ce;
  if (root.at_key("choices").get(ce)) return ReplyError{"the reply has no 'choices'"};
  if (ce.get_array().get(choices)) return ReplyError{"'choices' is not a list"};
  if (choices.size() == 0) return ReplyError{"the reply's 'choices' is empty"};
  simdjson::dom::object choice;
  if (choices.at(0).get_object().get(choice)) return ReplyError{"choices[0] is not an object"};
  simdjson::dom::object message;
  if (choice.at_key("message").get_object().get(message)) return ReplyError{"choices[0] has no 'message' object"};
  simdjson::dom::element content;
  if (message.at_key("content").get(content)) return ReplyError{"choices[0].message has no 'content'"};
  std::string_view text;
  if (content.get_string().get(text))
    return ReplyError{content.is_null() ? "choices[0].message.content is null (a refusal or a tool call)"
                                        : "choices[0].message.content is not a string"};
  ChatReply r;
  r.content = std::string(text);
  std::string_view s;
  if (!choice.at_key("finish_reason").get_string().get(s)) r.finish_reason = std::string(s);
  if (!root.at_key("model").get_string().get(s)) r.model = std::string(s);
  r.usage = detail::read_usage(root);
  return r;
}

// Parses an embeddings reply for `n_inputs` inputs: one finite vector per input, all of one
// dimension, placed by their `index` (input order when absent).
inline std::variant<EmbeddingReply, ReplyError> parse_embedding_reply(std::string_view body, size_t n_inputs) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (auto e = detail::parse_root(parser, body, root)) return *e;
  simdjson::dom::array data;
  if (root.at_key("data").get_array().get(data)) return ReplyError{"the reply has no 'data' list"};
  if (data.size() != n_inputs) return ReplyError{cat("the reply has ", data.size(), " embeddings for ", n_inputs, " inputs")};
  EmbeddingReply r;
  r.embeddings.resize(n_inputs);
  size_t pos = 0, dim = 0;
  for (simdjson::dom::element item : data) {
    simdjson::dom::object o;
    if (item.get_object().get(o)) return ReplyError{cat("data[", pos, "] is not an object")};
    uint64_t index = pos;
    simdjson::dom::element ie;
    if (!o.at_key("index").get(ie) && (ie.get_uint64().get(index) || index >= n_inputs))
      return ReplyError{cat("data[", pos, "].index is not an input index below ", n_inputs)};
    if (!r.embeddings[index].empty()) return ReplyError{cat("data[", pos, "] repeats index ", index)};
    simdjson::dom::array vec;
    if (o.at_key("embedding").get_array().get(vec))
      return ReplyError{cat("data[", pos, "].embedding is not a list of numbers (a base64 reply is not supported)")};
    if (vec.size() == 0) return ReplyError{cat("data[", pos, "].embedding is empty")};
    if (pos == 0) dim = vec.size();
    if (vec.size() != dim) return ReplyError{cat("data[", pos, "].embedding has ", vec.size(), " values, data[0] has ", dim)};
    auto& out = r.embeddings[index];
    out.reserve(dim);
    for (simdjson::dom::element x : vec) {
      double v = 0;
      if (x.get_double().get(v)) return ReplyError{cat("data[", pos, "].embedding holds a value that is not a number")};
      if (!std::isfinite(float(v))) return ReplyError{cat("data[", pos, "].embedding holds a value that is not finite as float32")};
      out.push_back(float(v));
    }
    ++pos;
  }
  r.usage = detail::read_usage(root);
  return r;
}

// The error message of an HTTP error reply body ({"error": {"message": ...}} or {"detail": ...}
// or plain text), clipped to one line.
inline std::string error_text(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view msg;
  if (!parser.parse(body.data(), body.size(), true).get(doc)) {
    simdjson::dom::object eo;
    if (!doc.at_key("error").get_object().get(eo) && !eo.at_key("message").get_string().get(msg)) return detail::clip(msg);
    if (!doc.at_key("error").get_string().get(msg)) return detail::clip(msg);
    if (!doc.at_key("detail").get_string().get(msg)) return detail::clip(msg);
    if (!doc.at_key("message").get_string().get(msg)) return detail::clip(msg);
  }
  return detail::clip(body);
}

// Seconds a Retry-After header asks for: delta-seconds (possibly fractional, as some servers
// send) or an HTTP date (given `now` and a parser of dates, -1 when unparseable). -1 = absent
// or unusable.
template <class DateParser>
double retry_after_seconds(std::string_view v, double now_epoch_s, DateParser&& parse_date) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) v.remove_suffix(1);
  if (v.empty()) return -1;
  bool numeric = true;
  for (char c : v) numeric = numeric && ((c >= '0' && c <= '9') || c == '.');
  if (numeric) {
    try {
      const double s = std::stod(std::string(v));
      return std::isfinite(s) && s >= 0 ? s : -1;
    } catch (const std::exception&) {
      return -1;
    }
  }
  const double t = parse_date(std::string(v));
  if (t < 0) return -1;
  return std::max(0.0, t - now_epoch_s);
}

}  // namespace recdistill::llm
