// recdistill/llm/cache.hpp: the answer cache: append-only JSON lines, one record per request,
// so that no request is ever paid for twice (docs/llm.md, "The answer cache").
//
// Key: (purpose, template id, model, request key). A live request's key is "sha256:" + the
// SHA-256 of the exact request body; an imported answer keeps its own key ("session:2604").
// Records, one JSON object per line, `status` saying which kind:
//   ok          a completed reply (request and response bodies, tokens, cost, latency)
//   unparseable a completed reply that is not what the protocol promises: cached, it was paid for
//   recorded    an answer imported from elsewhere (the original object under "answer")
//   inflight    a claim: process `pid` on `host` is sending this request until `expires`
//   released    that claim ended without an answer (the request failed; it may be sent again)
// The first ok / unparseable / recorded record of a key is its answer; later ones are counted
// as duplicates. Each record is one write() of the whole line on an O_APPEND descriptor,
// followed by fsync, under an exclusive flock() of the file; readers take a shared lock. A
// writer that crashed mid-write leaves a torn last line without its newline: it is dropped with a
// warning (and cut off before the next append). Any other malformed line is an error naming
// the file and line. A claim whose process is gone (same host) or whose time is up (any host)
// is stale: its request may be sent again.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/alloc_limits.hpp"
#include "recdistill/io/log.hpp"

namespace recdistill::llm {

struct CacheKey {
  std::string purpose;      // what the answer is for: "profile", "rank", "embedding", ...
  std::string template_id;  // the prompt template (and its version) that made the request
  std::string model;
  std::string request_key;  // "sha256:<hex of the request body>" or an imported answer's own key

  std::string id() const { return purpose + '\x1f' + template_id + '\x1f' + model + '\x1f' + request_key; }
  std::string text() const { return cat(purpose, "/", template_id, "/", model, "/", request_key); }
};

struct CacheRecord {
  CacheKey key;
  std::string status;    // ok | unparseable | recorded
  std::string url;       // where the request went ("" for recorded)
  std::string request;   // the exact request body ("" for recorded)
  std::string response;  // the reply body; recorded: the imported answer object as JSON
  std::string error;     // unparseable: what is wrong with the reply
  std::string source;    // recorded: where it was imported from
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double cost_usd = 0, latency_s = 0;
  std::string time;      // ISO-8601 UTC of the write
  size_t line = 0;       // 1-based line in the cache file
};

inline double epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// ---- the record format: one place for reading and writing a line ----

namespace detail {

inline std::string key_fields(const CacheKey& k) {
  return "\"purpose\": " + io::json_quote(k.purpose) + ", \"template_id\": " + io::json_quote(k.template_id) +
         ", \"model\": " + io::json_quote(k.model) + ", \"key\": " + io::json_quote(k.request_key);
}

}  // namespace detail

inline std::string answer_line(const CacheRecord& r) {
  std::string s = "{\"v\": 1, \"status\": " + io::json_quote(r.status) + ", " + detail::key_fields(r.key);
  if (r.status == "recorded") {
    s += ", \"source\": " + io::json_quote(r.source) + ", \"answer\": " + r.response;
  } else {
    s += ", \"url\": " + io::json_quote(r.url) + ", \"request\": " + io::json_quote(r.request) +
         ", \"response\": " + io::json_quote(r.response);
    if (r.status == "unparseable") s += ", \"error\": " + io::json_quote(r.error);
    s += ", \"prompt_tokens\": " + std::to_string(r.prompt_tokens) +
         ", \"completion_tokens\": " + std::to_string(r.completion_tokens) + ", \"cost_usd\": " + io::json_number(r.cost_usd) +
         ", \"latency_s\": " + io::json_number(r.latency_s);
  }
  return s + ", \"time\": " + io::json_quote(r.time) + "}\n";
}

// What a cache file says about its keys, built line by line (parse_cache_lines).
struct CacheState {
  struct Claim {
    std::string token, host;
    int64_t pid = 0;
    double expires = 0;
  };
  struct Slot {
    int answer = -1;             // index into records, -1 = none
    std::optional<Claim> claim;  // the open claim, if any
  };
  std::vector<CacheRecord> records;
  std::unordered_map<std::string, Slot> slots;
  size_t lines = 0;       // complete lines read
  size_t duplicates = 0;  // answers after a key's first
  bool missing_newline = false;  // the last line is complete but has no '\n'
};

namespace detail {

inline std::string_view str_field(simdjson::dom::object o, const char* key, const std::string& where) {
  std::string_view s;
  simdjson::dom::element e;
  if (o.at_key(key).get(e)) fail(where, ": key '", key, "': expected a string, found no such key");
  if (e.get_string().get(s)) fail(where, ": key '", key, "': expected a string");
  return s;
}

inline double num_field(simdjson::dom::object o, const char* key, const std::string& where) {
  simdjson::dom::element e;
  double v = 0;
  if (o.at_key(key).get(e)) fail(where, ": key '", key, "': expected a number, found no such key");
  if (e.get_double().get(v) || !std::isfinite(v)) fail(where, ": key '", key, "': expected a finite number");
  return v;
}

inline int64_t count_field(simdjson::dom::object o, const char* key, const std::string& where) {
  simdjson::dom::element e;
  int64_t v = 0;
  if (o.at_key(key).get(e)) fail(where, ": key '", key, "': expected a count, found no such key");
  if (e.get_int64().get(v) || v < 0) fail(where, ": key '", key, "': expected a non-negative integer");
  return v;
}

// Applies one line (1-based `line`) to the state; throws naming `where` when it is not a record.
inline void apply_line(CacheState& st, simdjson::dom::parser& parser, std::string_view text, size_t line,
                       const std::string& path) {
  const std::string where = cat(path, ":", line);
  simdjson::dom::element doc;
  if (const auto err = parser.parse(text.data(), text.size(), true).get(doc))
    fail(where, ": not a cache record: invalid JSON (", simdjson::error_message(err), ")");
  simdjson::dom::object o;
  if (doc.get_object().get(o)) fail(where, ": not a cache record: expected a JSON object");
  int64_t v = 0;
  if (o.at_key("v").get_int64().get(v) || v != 1)
    fail(where, ": key 'v': expected format version 1 (this build reads version 1 cache files)");
  CacheRecord r;
  r.key.purpose = std::string(str_field(o, "purpose", where));
  r.key.template_id = std::string(str_field(o, "template_id", where));
  r.key.model = std::string(str_field(o, "model", where));
  r.key.request_key = std::string(str_field(o, "key", where));
  r.status = std::string(str_field(o, "status", where));
  r.time = std::string(str_field(o, "time", where));
  r.line = line;
  CacheState::Slot& slot = st.slots[r.key.id()];
  if (r.status == "inflight" || r.status == "released") {
    const std::string token(str_field(o, "claim", where));
    if (r.status == "inflight") {
      slot.claim = CacheState::Claim{token, std::string(str_field(o, "host", where)), count_field(o, "pid", where),
                                     num_field(o, "expires", where)};
    } else if (slot.claim && slot.claim->token == token) {
      slot.claim.reset();
    }
    return;
  }
  if (r.status == "recorded") {
    simdjson::dom::element a;
    if (o.at_key("answer").get(a)) fail(where, ": key 'answer': expected the recorded answer, found no such key");
    r.response = simdjson::minify(a);
    r.source = std::string(str_field(o, "source", where));
  } else if (r.status == "ok" || r.status == "unparseable") {
    r.url = std::string(str_field(o, "url", where));
    r.request = std::string(str_field(o, "request", where));
    r.response = std::string(str_field(o, "response", where));
    if (r.status == "unparseable") r.error = std::string(str_field(o, "error", where));
    r.prompt_tokens = count_field(o, "prompt_tokens", where);
    r.completion_tokens = count_field(o, "completion_tokens", where);
    r.cost_usd = num_field(o, "cost_usd", where);
    r.latency_s = num_field(o, "latency_s", where);
  } else {
    fail(where, ": key 'status': expected ok, unparseable, recorded, inflight or released, found '",
         r.status.substr(0, 40), "'");
  }
  slot.claim.reset();  // an answer ends any claim
  if (slot.answer >= 0) {
    ++st.duplicates;
    return;
  }
  slot.answer = int(st.records.size());
  st.records.push_back(std::move(r));
}

}  // namespace detail

// Reads the complete lines of `text` (the bytes of the file from a line start; `first_line`
// is the 1-based number of its first line) into `st`. Returns the bytes consumed. A last piece
// without '\n' is taken when it is a whole record (st.missing_newline); otherwise it is a torn
// write: not consumed, and `torn` is set. Every other malformed line throws, naming path:line.
inline size_t parse_cache_lines(CacheState& st, std::string_view text, size_t first_line, const std::string& path,
                                bool& torn) {
  simdjson::dom::parser parser;
  torn = false;
  size_t pos = 0, line = first_line;
  if (st.missing_newline && !text.empty() && text.front() == '\n') {  // the newline a later append put first
    st.missing_newline = false;
    pos = 1;
  }
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const bool complete = nl != std::string_view::npos;
    std::string_view l = text.substr(pos, complete ? nl - pos : text.size() - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!complete) {
      // A write that did not finish leaves a prefix of a line, never valid JSON (every record
      // ends with its closing brace); valid JSON there is a whole line and is read as one.
      simdjson::dom::element probe;
      if (parser.parse(l.data(), l.size(), true).get(probe)) {
        torn = true;
        return pos;
      }
      detail::apply_line(st, parser, l, line, path);
      st.missing_newline = true;
      ++st.lines;
      return text.size();
    }
    if (l.empty()) fail(path, ":", line, ": an empty line in the cache (each line is one record)");
    detail::apply_line(st, parser, l, line, path);
    ++st.lines;
    pos = nl + 1;
    ++line;
  }
  return pos;
}

// The cache file, shared by threads (a mutex) and processes (flock).
class AnswerCache {
 public:
  enum class ClaimState { answered, claimed, busy };
  struct ClaimResult {
    ClaimState state;
    CacheRecord answer;  // answered
    std::string token;   // claimed: pass to complete() or release()
    std::string holder;  // busy: who holds the claim ("pid 123 on host h until ...")
  };

  // Opens (creating it and its folder when missing) and reads the whole cache. `warn` gets
  // the warnings (a dropped torn line, duplicate answers).
  explicit AnswerCache(std::string path, std::ostream* warn = &std::cerr) : path_(std::move(path)), warn_(warn) {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) fail(path_, ": is a folder, expected the answer cache file (llm.cache)");
    const auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path_, ": cannot open the answer cache: ", std::strerror(errno));
    host_ = host_name();
    std::random_device rd;
    token_base_ = cat(std::hex, rd(), rd(), "-", ::getpid());
    {
      std::lock_guard<std::mutex> g(instances_mu());
      instances().push_back(token_base_);
    }
    try {
      Locked lock(*this, LOCK_SH);
      refresh();
    } catch (...) {
      close_and_forget();
      throw;
    }
    if (state_.duplicates && warn_)
      *warn_ << "warning: " << path_ << ": " << state_.duplicates << " repeated answers (the first of each key is used)\n";
  }
  ~AnswerCache() { close_and_forget(); }
  AnswerCache(const AnswerCache&) = delete;
  AnswerCache& operator=(const AnswerCache&) = delete;

  const std::string& path() const { return path_; }

  // The cached answer of `key`, if any (reading what other processes appended meanwhile).
  std::optional<CacheRecord> find(const CacheKey& key) {
    std::lock_guard<std::mutex> g(mu_);
    Locked lock(*this, LOCK_SH);
    refresh();
    return answer_of(key);
  }

  // Everything read so far (tests, reports).
  CacheState snapshot() {
    std::lock_guard<std::mutex> g(mu_);
    Locked lock(*this, LOCK_SH);
    refresh();
    return state_;
  }

  // The answer, or a claim on sending the request (an inflight record is appended; valid for
  // `claim_seconds`), or `busy` when a live claim of another process or thread holds it.
  ClaimResult claim(const CacheKey& key, double claim_seconds) {
    std::lock_guard<std::mutex> g(mu_);
    Locked lock(*this, LOCK_EX);
    refresh();
    if (auto a = answer_of(key)) return {ClaimState::answered, *a, "", ""};
    const auto it = state_.slots.find(key.id());
    if (it != state_.slots.end() && it->second.claim && claim_alive(*it->second.claim)) {
      const auto& c = *it->second.claim;
      return {ClaimState::busy, {}, "", cat("pid ", c.pid, " on ", c.host)};
    }
    const std::string token = cat(token_base_, "-", ++claims_);
    const double expires = epoch_seconds() + claim_seconds;
    append_locked("{\"v\": 1, \"status\": \"inflight\", " + detail::key_fields(key) + ", \"claim\": " + io::json_quote(token) +
                  ", \"pid\": " + std::to_string(::getpid()) + ", \"host\": " + io::json_quote(host_) +
                  ", \"expires\": " + io::json_number(expires) + ", \"time\": " + io::json_quote(io::iso8601_utc()) + "}\n");
    return {ClaimState::claimed, {}, token, ""};
  }

  // Appends the answer of a claimed request (ok or unparseable); the claim ends with it.
  void complete(CacheRecord r) {
    std::lock_guard<std::mutex> g(mu_);
    Locked lock(*this, LOCK_EX);
    refresh();
    if (r.time.empty()) r.time = io::iso8601_utc();
    append_locked(answer_line(r));
  }

  // Ends a claim without an answer (the request failed and may be sent again later).
  void release(const CacheKey& key, const std::string& token) {
    std::lock_guard<std::mutex> g(mu_);
    Locked lock(*this, LOCK_EX);
    refresh();
    append_locked("{\"v\": 1, \"status\": \"released\", " + detail::key_fields(key) + ", \"claim\": " + io::json_quote(token) +
                  ", \"time\": " + io::json_quote(io::iso8601_utc()) + "}\n");
  }

  // Appends recorded answers (imported from elsewhere) whose keys have no answer yet, in one
  // locked pass; returns how many were new.
  size_t add_recorded(const std::vector<CacheRecord>& recs) {
    std::lock_guard<std::mutex> g(mu_);
    Locked lock(*this, LOCK_EX);
    refresh();
    std::string lines;
    size_t added = 0;
    std::unordered_map<std::string, bool> seen;
    for (CacheRecord r : recs) {
      if (answer_of(r.key) || seen.count(r.key.id())) continue;
      seen[r.key.id()] = true;
      r.status = "recorded";
      if (r.time.empty()) r.time = io::iso8601_utc();
      lines += answer_line(r);
      ++added;
    }
    if (!lines.empty()) append_locked(lines);
    return added;
  }

 private:
  struct Locked {
    Locked(AnswerCache& c, int op) : fd(c.fd_) {
      while (::flock(fd, op) != 0)
        if (errno != EINTR) fail(c.path_, ": cannot lock the answer cache: ", std::strerror(errno));
    }
    ~Locked() { ::flock(fd, LOCK_UN); }
    int fd;
  };

  void close_and_forget() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    std::lock_guard<std::mutex> g(instances_mu());
    auto& v = instances();
    v.erase(std::remove(v.begin(), v.end(), token_base_), v.end());
  }

  // The cache objects alive in this process (their claims are live; another object's
  // claims under this pid were left by an earlier run whose pid was reused).
  static std::mutex& instances_mu() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::string>& instances() {
    static std::vector<std::string> v;
    return v;
  }
  static bool live_instance(const std::string& token) {
    std::lock_guard<std::mutex> g(instances_mu());
    for (const auto& b : instances())
      if (token.rfind(b + "-", 0) == 0) return true;
    return false;
  }

  std::optional<CacheRecord> answer_of(const CacheKey& key) const {
    const auto it = state_.slots.find(key.id());
    if (it == state_.slots.end() || it->second.answer < 0) return std::nullopt;
    return state_.records[size_t(it->second.answer)];
  }

  bool claim_alive(const CacheState::Claim& c) const {
    if (epoch_seconds() > c.expires) return false;
    if (c.host != host_) return true;  // another machine: trust the deadline
    if (c.pid == ::getpid()) return live_instance(c.token);  // this process: alive while its cache object is
    return c.pid > 0 && (::kill(pid_t(c.pid), 0) == 0 || errno == EPERM);
  }

  // Reads what was appended since the last read (call with the flock held). A malformed line
  // leaves the object unusable: every later call repeats the error (state_ may hold part of
  // the failed read).
  void refresh() {
    if (!broken_.empty()) fail(broken_);
    try {
      refresh_unchecked();
    } catch (const Error& e) {
      broken_ = e.what();
      throw;
    }
  }

  void refresh_unchecked() {
    struct stat sb {};
    if (::fstat(fd_, &sb) != 0) fail(path_, ": cannot stat the answer cache: ", std::strerror(errno));
    const size_t size = size_t(sb.st_size);
    torn_ = false;
    if (size < offset_) fail(path_, ": the answer cache shrank while in use (it is append-only)");
    if (size == offset_) return;
    io::check_allocation(uint64_t(size - offset_), "reading the answer cache", path_);  // io/alloc_limits.hpp
    std::string buf;
    try {
      buf.assign(size - offset_, '\0');
    } catch (const std::bad_alloc&) {
      fail(path_, ": cannot allocate ", io::human_bytes(uint64_t(size - offset_)), " to read the answer cache");
    }
    size_t got = 0;
    while (got < buf.size()) {
      const ssize_t n = ::pread(fd_, buf.data() + got, buf.size() - got, off_t(offset_ + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(path_, ": read error in the answer cache: ", n < 0 ? std::strerror(errno) : "unexpected end");
      got += size_t(n);
    }
    bool torn = false;
    const size_t used = parse_cache_lines(state_, buf, state_.lines + 1, path_, torn);
    offset_ += used;
    if (torn) {
      torn_ = true;
      if (!torn_warned_ && warn_)
        *warn_ << "warning: " << path_ << ":" << state_.lines + 1 << ": dropped a torn last line (" << buf.size() - used
               << " bytes of a write that did not finish)\n";
      torn_warned_ = true;
    }
  }

  // One write() of whole lines at the end, then fsync (call with LOCK_EX held, after refresh()).
  // The lines are read back first: a line this build could not read is never written.
  void append_locked(std::string lines) {
    {
      CacheState scratch;
      bool torn = false;
      parse_cache_lines(scratch, lines, state_.lines + 1, path_ + " (a record about to be written)", torn);
      RD_REQUIRE(!torn, "a cache record without its newline");
    }
    if (torn_) {  // cut the torn bytes off first: no writer is active while we hold the lock
      if (::ftruncate(fd_, off_t(offset_)) != 0) fail(path_, ": cannot drop the torn last line: ", std::strerror(errno));
      torn_ = false;
    } else if (state_.missing_newline) {
      lines.insert(0, "\n");  // the next read skips it and clears the flag
    }
    size_t done = 0;
    while (done < lines.size()) {
      const ssize_t w = ::write(fd_, lines.data() + done, lines.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(path_, ": cannot append to the answer cache: ", std::strerror(errno));
      done += size_t(w);
    }
    if (::fsync(fd_) != 0) fail(path_, ": fsync of the answer cache failed: ", std::strerror(errno));
    refresh();  // take our own lines in
  }

  std::string path_;
  std::ostream* warn_;
  int fd_ = -1;
  std::mutex mu_;
  CacheState state_;
  size_t offset_ = 0;
  bool torn_ = false, torn_warned_ = false;
  std::string broken_;  // the read error that made this object unusable
  std::string host_, token_base_;
  uint64_t claims_ = 0;
};

}  // namespace recdistill::llm
