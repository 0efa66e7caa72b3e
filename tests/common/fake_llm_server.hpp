// tests/common/fake_llm_server.hpp: a scriptable OpenAI-compatible HTTP server on the loopback
// interface, for the LLM client's tests (no endpoint is reachable from CI). Each request is
// logged and answered by the test's handler: a status, headers, a body, an optional delay
// (cut short when the server stops) or a dropped connection.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "recdistill/io/log.hpp"

namespace recdistill::test {

// Every test binary that includes this talks to the server on loopback: never through a proxy
// the machine sets.
struct NoProxy {
  NoProxy() {
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  }
};
inline const NoProxy no_proxy;

struct FakeRequest {
  std::string method, path, body, authorization;
};

struct FakeReply {
  FakeReply() = default;
  FakeReply(int s, std::string b, std::vector<std::pair<std::string, std::string>> h = {})
      : status(s), body(std::move(b)), headers(std::move(h)) {}
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  double delay_s = 0;  // wait before replying (interrupted by stop())
  bool drop = false;   // close the connection without a reply
};

// A chat-completions reply with `content` and the given usage.
inline std::string chat_reply_body(const std::string& content, int prompt_tokens = 10, int completion_tokens = 5) {
  return "{\"id\": \"x\", \"object\": \"chat.completion\", \"model\": \"fake\", \"choices\": [{\"index\": 0, "
         "\"message\": {\"role\": \"assistant\", \"content\": " + io::json_quote(content) +
         "}, \"finish_reason\": \"stop\"}], \"usage\": {\"prompt_tokens\": " + std::to_string(prompt_tokens) +
         ", \"completion_tokens\": " + std::to_string(completion_tokens) + "}}";
}

// An embeddings reply of n vectors of `dim` values: vector i is (i + 1) * (1, 2, ..., dim) / 100.
inline std::string embedding_reply_body(size_t n, size_t dim) {
  std::string b = "{\"object\": \"list\", \"data\": [";
  for (size_t i = 0; i < n; ++i) {
    b += (i ? ", " : "") + std::string("{\"index\": ") + std::to_string(i) + ", \"embedding\": [";
    for (size_t k = 0; k < dim; ++k) b += (k ? ", " : "") + io::json_number(double(i + 1) * double(k + 1) / 100.0);
    b += "]}";
  }
  return b + "], \"usage\": {\"prompt_tokens\": " + std::to_string(3 * n) + "}}";
}

class FakeLlmServer {
 public:
  using Handler = std::function<FakeReply(const FakeRequest&, size_t index)>;  // index: 0-based arrival order

  explicit FakeLlmServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0)
      throw std::runtime_error("fake server: cannot listen on 127.0.0.1");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~FakeLlmServer() { stop(); }

  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

  std::vector<FakeRequest> requests() const {
    std::lock_guard<std::mutex> g(mu_);
    return log_;
  }
  size_t count() const {
    std::lock_guard<std::mutex> g(mu_);
    return log_.size();
  }
  // Waits until `n` requests have arrived (false after `seconds`).
  bool wait_for(size_t n, double seconds) const {
    std::unique_lock<std::mutex> g(mu_);
    return cv_.wait_for(g, std::chrono::duration<double>(seconds), [&] { return log_.size() >= n; });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (acceptor_.joinable()) acceptor_.join();
    std::unique_lock<std::mutex> g(mu_);  // connection threads are detached: wait until all are done
    cv_.wait(g, [&] { return active_ == 0; });
  }

 private:
  void accept_loop() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;  // closed by stop()
      std::lock_guard<std::mutex> g(mu_);
      if (stopped_) {
        ::close(c);
        return;
      }
      ++active_;
      std::thread([this, c] {
        serve(c);
        std::lock_guard<std::mutex> g(mu_);
        --active_;
        cv_.notify_all();
      }).detach();
    }
  }

  static bool send_all(int c, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::send(c, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += size_t(n);
    }
    return true;
  }

  void serve(int c) {
    std::string buf;
    char tmp[65536];
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return (void)::close(c);
      buf.append(tmp, size_t(n));
    }
    FakeRequest rq;
    const std::string head = buf.substr(0, head_end);
    const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    rq.method = head.substr(0, sp1);
    rq.path = head.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t content_length = 0;
    for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
      const size_t next = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (name == "content-length") content_length = std::stoul(value);
        if (name == "authorization") rq.authorization = value;
      }
      pos = next;
    }
    rq.body = buf.substr(head_end + 4);
    while (rq.body.size() < content_length) {
      const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return (void)::close(c);
      rq.body.append(tmp, size_t(n));
    }
    size_t index;
    {
      std::lock_guard<std::mutex> g(mu_);
      index = log_.size();
      log_.push_back(rq);
    }
    cv_.notify_all();
    const FakeReply rep = handler_(rq, index);
    if (rep.delay_s > 0) {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait_for(g, std::chrono::duration<double>(rep.delay_s), [&] { return stopped_; });
    }
    if (!rep.drop) {
      std::string out = "HTTP/1.1 " + std::to_string(rep.status) + " X\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\nContent-Length: " + std::to_string(rep.body.size()) + "\r\n";
      for (const auto& [k, v] : rep.headers) out += k + ": " + v + "\r\n";
      send_all(c, out + "\r\n" + rep.body);
    }
    ::shutdown(c, SHUT_RDWR);
    ::close(c);
  }

  Handler handler_;
  int fd_ = -1, port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  size_t active_ = 0;  // connection threads still running
  std::vector<FakeRequest> log_;
  bool stopped_ = false;
};

// A loopback port nothing listens on (bound, then closed).
inline int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace recdistill::test
