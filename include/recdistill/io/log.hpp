// recdistill/io/log.hpp: log levels for what the apps print, and the one JSON-lines schema
// every machine-readable log uses (docs/experiments.md, "Logs").
//
// Every line is one JSON object whose first two keys are always
//   {"time": "2026-11-26T22:51:50.123Z", "event": "epoch", ...fields}
// time: ISO-8601 UTC with milliseconds, when the line was written; event: a short snake_case
// name; fields: numbers, strings, booleans, null, or flat objects of metric name -> number.
// Non-finite numbers (NaN, Inf) are written as null: JSON has no token for them.
//
// Each line goes to the file with one write() on an O_APPEND descriptor, so a run killed at
// any moment leaves only whole lines (nothing buffered, nothing half-written).
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>

#include "recdistill/core/error.hpp"

namespace recdistill::io {

// quiet: results and errors only; info: + per-epoch lines and progress (default);
// verbose: + setup details; debug: + per-step losses, gradient norms and timings.
enum class LogLevel { quiet = 0, info = 1, verbose = 2, debug = 3 };

inline const char* to_string(LogLevel l) {
  switch (l) {
    case LogLevel::quiet: return "quiet";
    case LogLevel::info: return "info";
    case LogLevel::verbose: return "verbose";
    case LogLevel::debug: return "debug";
  }
  return "info";
}

// `what` names where the text came from ("--log-level", "config.yaml:4: runtime.log_level").
inline LogLevel parse_log_level(std::string_view s, std::string_view what = "log level") {
  for (LogLevel l : {LogLevel::quiet, LogLevel::info, LogLevel::verbose, LogLevel::debug})
    if (s == to_string(l)) return l;
  fail(what, ": expected quiet, info, verbose or debug, found '", s, "'");
}

// From the usual flags: --debug beats --verbose beats --quiet.
inline LogLevel log_level_from_flags(bool quiet, bool verbose, bool debug) {
  return debug ? LogLevel::debug : verbose ? LogLevel::verbose : quiet ? LogLevel::quiet : LogLevel::info;
}

// "2026-11-26T22:51:50.123Z"
inline std::string iso8601_utc(std::chrono::system_clock::time_point t = std::chrono::system_clock::now()) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", int(ms % 1000));
  return buf;
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
inline size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

// JSON string literal with quotes; control characters escaped as \u00XX. Bytes that are not
// well-formed UTF-8 become U+FFFD, so every reader (simdjson validates) can parse the result.
inline std::string json_quote(std::string_view s) {
  std::string o = "\"";
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t n = utf8_sequence(s, i);
      if (n == 0) {
        o += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
        ++i;
      } else {
        o.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (c == '\n') {
      o += "\\n";
    } else if (c == '\t') {
      o += "\\t";
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      o += buf;
    } else {
      o += c;
    }
    ++i;
  }
  return o + "\"";
}

// Shortest text that reads back to the same double; null for NaN/Inf.
inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// The fields of one log line, in the order they are added.
class JsonFields {
 public:
  JsonFields& add(std::string_view key, double v) { return raw(key, json_number(v)); }
  JsonFields& add(std::string_view key, float v) { return add(key, double(v)); }
  JsonFields& add(std::string_view key, int v) { return raw(key, std::to_string(v)); }
  JsonFields& add(std::string_view key, long v) { return raw(key, std::to_string(v)); }
  JsonFields& add(std::string_view key, long long v) { return raw(key, std::to_string(v)); }
  JsonFields& add(std::string_view key, unsigned v) { return raw(key, std::to_string(v)); }
  JsonFields& add(std::string_view key, unsigned long v) { return raw(key, std::to_string(v)); }
  JsonFields& add(std::string_view key, unsigned long long v) { return raw(key, std::to_string(v)); }
  JsonFields& add(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonFields& add(std::string_view key, std::string_view v) { return raw(key, json_quote(v)); }
  JsonFields& add(std::string_view key, const char* v) { return raw(key, json_quote(v)); }
  JsonFields& add(std::string_view key, const std::string& v) { return raw(key, json_quote(v)); }
  JsonFields& add(std::string_view key, const std::map<std::string, double>& m) {
    std::string o = "{";
    for (const auto& [k, v] : m) o += (o.size() > 1 ? ", " : "") + json_quote(k) + ": " + json_number(v);
    return raw(key, o + "}");
  }
  // An already-encoded JSON value.
  JsonFields& raw(std::string_view key, std::string_view json) {
    body_ += ", " + json_quote(key) + ": ";
    body_ += json;
    return *this;
  }
  const std::string& body() const { return body_; }  // ", \"k\": v, ..." (empty when none)

 private:
  std::string body_;
};

// One complete line of the schema, newline included.
inline std::string json_log_line(std::string_view event, const JsonFields& fields = {},
                                 const std::string& time = iso8601_utc()) {
  return "{\"time\": " + json_quote(time) + ", \"event\": " + json_quote(event) + fields.body() + "}\n";
}

// Appends schema lines to a file; one write() per line (see the header comment).
class JsonlWriter {
 public:
  JsonlWriter() = default;
  explicit JsonlWriter(const std::string& path) { open(path); }
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  JsonlWriter(JsonlWriter&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  ~JsonlWriter() { close(); }

  void open(const std::string& path) {
    close();
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path, ": cannot open log file for appending: ", std::strerror(errno));
    path_ = path;
  }
  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  void write(std::string_view event, const JsonFields& fields = {}) {
    if (fd_ < 0) return;
    const std::string line = json_log_line(event, fields);
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail(path_, ": cannot write log line: ", std::strerror(errno));
      }
      done += size_t(w);
    }
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace recdistill::io
