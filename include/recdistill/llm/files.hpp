// recdistill/llm/files.hpp: the two user files around the client, both JSON lines (untrusted
// bytes: tests/fuzz/llm_cache_fuzz.cpp covers them):
//
//   recorded answers  answers obtained elsewhere, imported into the cache under a template id
//                     of their own and matched by their own key, e.g. data/alkdrec-ml's
//                     llm_answers.jsonl: {"session_id": 2604, "ranked_items": [...], ...}
//                     -> key "session:2604" (docs/llm.md, "Recorded answers")
//   batch input       the requests of `recdistill llm batch`: {"id": ..., "prompt": "..."} or
//                     {"id": ..., "messages": [{"role": ..., "content": ...}, ...]}; with
//                     --embeddings {"id": ..., "text": "..."}
#pragma once
#include <simdjson.h>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/llm/cache.hpp"
#include "recdistill/llm/protocol.hpp"

namespace recdistill::llm {

namespace detail {

// Calls row(object, line) for each line of a JSON-lines text (a final '\n' is optional; no
// empty lines in between; CRLF accepted).
template <class Row>
void json_lines(std::string_view text, const std::string& path, Row&& row) {
  simdjson::dom::parser parser;
  size_t pos = 0, line = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;  // a UTF-8 BOM
  while (pos < text.size()) {
    ++line;
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty()) {
      if (text.find_first_not_of("\r\n", pos > text.size() ? text.size() : pos) == std::string_view::npos) break;
      fail(path, ":", line, ": an empty line (expected one JSON object per line)");
    }
    simdjson::dom::element doc;
    if (const auto err = parser.parse(l.data(), l.size(), true).get(doc))
      fail(path, ":", line, ": expected one JSON object per line, found invalid JSON (", simdjson::error_message(err), ")");
    simdjson::dom::object o;
    if (doc.get_object().get(o)) fail(path, ":", line, ": expected a JSON object");
    row(o, doc, line);
  }
  if (line == 0) fail(path, ": the file is empty (expected one JSON object per line)");
}

// An id field: a string, or an integer written as its decimal text.
inline std::string id_text(simdjson::dom::object o, const char* field, const std::string& where) {
  simdjson::dom::element e;
  if (o.at_key(field).get(e)) fail(where, ": key '", field, "': expected an id, found no such key");
  std::string_view s;
  if (!e.get_string().get(s)) {
    if (s.empty()) fail(where, ": key '", field, "': expected a non-empty id");
    return std::string(s);
  }
  int64_t i = 0;
  if (!e.get_int64().get(i)) return std::to_string(i);
  fail(where, ": key '", field, "': expected a string or an integer");
}

}  // namespace detail

// Cache records of recorded answers: each line's object as it is, keyed by `key_prefix` + the
// value of `id_field` under `base`'s purpose, template id and model. A repeated id is an error
// naming both lines (the spec's "first record wins" applies to the cache, not to an import).
inline std::vector<CacheRecord> parse_recorded_answers(std::string_view text, const std::string& path, const CacheKey& base,
                                                       const std::string& id_field, const std::string& key_prefix) {
  std::vector<CacheRecord> out;
  std::unordered_map<std::string, size_t> seen;
  detail::json_lines(text, path, [&](simdjson::dom::object o, simdjson::dom::element doc, size_t line) {
    const std::string where = cat(path, ":", line);
    const std::string id = detail::id_text(o, id_field.c_str(), where);
    const auto [it, fresh] = seen.emplace(id, line);
    if (!fresh) fail(where, ": ", id_field, " ", id, " repeats line ", it->second, " (one recorded answer per key)");
    CacheRecord r;
    r.key = base;
    r.key.request_key = key_prefix + id;
    r.status = "recorded";
    r.response = simdjson::minify(doc);
    r.source = where;
    out.push_back(std::move(r));
  });
  return out;
}

struct BatchItem {
  std::string id;
  std::vector<Message> messages;  // chat
  std::string text;               // embeddings
  size_t line = 0;
};

inline std::vector<BatchItem> parse_batch_input(std::string_view text, const std::string& path, bool embeddings) {
  std::vector<BatchItem> out;
  std::unordered_map<std::string, size_t> seen;
  detail::json_lines(text, path, [&](simdjson::dom::object o, simdjson::dom::element, size_t line) {
    const std::string where = cat(path, ":", line);
    BatchItem it;
    it.line = line;
    it.id = detail::id_text(o, "id", where);
    const auto [prev, fresh] = seen.emplace(it.id, line);
    if (!fresh) fail(where, ": id '", it.id, "' repeats line ", prev->second);
    std::string_view s;
    if (embeddings) {
      if (o.at_key("text").get_string().get(s)) fail(where, ": key 'text': expected the string to embed");
      it.text = std::string(s);
    } else if (!o.at_key("prompt").get_string().get(s)) {
      it.messages.push_back({"user", std::string(s)});
    } else {
      simdjson::dom::array msgs;
      if (o.at_key("messages").get_array().get(msgs))
        fail(where, ": expected a 'prompt' string or a 'messages' list of {\"role\", \"content\"}");
      size_t k = 0;
      for (simdjson::dom::element m : msgs) {
        std::string_view role, content;
        if (m.at_key("role").get_string().get(role) || m.at_key("content").get_string().get(content))
          fail(where, ": messages[", k, "]: expected {\"role\": string, \"content\": string}");
        if (role != "system" && role != "user" && role != "assistant")
          fail(where, ": messages[", k, "].role: expected system, user or assistant, found '", std::string(role.substr(0, 40)), "'");
        it.messages.push_back({std::string(role), std::string(content)});
        ++k;
      }
      if (it.messages.empty()) fail(where, ": key 'messages': expected at least one message");
    }
    out.push_back(std::move(it));
  });
  return out;
}

}  // namespace recdistill::llm
