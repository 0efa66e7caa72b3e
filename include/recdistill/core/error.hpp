// recdistill/core/error.hpp: the one exception type of the library.
//
// Every error names the place (file, line, key) and says what was expected and what was
// found, so messages are built by the caller; this header only carries them.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace recdistill {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates the arguments with operator<< into one message.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

// Checks a precondition of the library's own API (not user input: user input gets a
// message naming file/line/key from the parser that read it).
#define RD_REQUIRE(cond, ...)                                                         \
  do {                                                                                \
    if (!(cond)) ::recdistill::fail(__FILE__, ":", __LINE__, ": ", __VA_ARGS__);      \
  } while (0)

}  // namespace recdistill
