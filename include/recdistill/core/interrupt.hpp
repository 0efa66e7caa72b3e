// recdistill/core/interrupt.hpp: a graceful stop on SIGINT or SIGTERM.
//
// An app calls install_interrupt_handlers() once. The first signal only sets a flag: the
// trainer finishes the epoch it is in (its validation and its checkpoint commit, so the run
// folder's pair is that epoch's and a resume continues bit for bit), then throws Interrupted,
// which the app turns into a message saying how to resume and a non-zero exit (128 + the
// signal, as a shell reports a process killed by it). A second signal restores the default
// action and re-raises it, stopping the process at once; the committed checkpoint pair stays
// consistent (train/checkpoint_files.hpp). Library code that never installs the handlers is
// unaffected.
#pragma once
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "recdistill/core/error.hpp"

namespace recdistill {

namespace detail {
inline std::atomic<int>& interrupt_signal() {
  static std::atomic<int> s{0};
  return s;
}
extern "C" inline void recdistill_on_interrupt(int sig) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  if (interrupt_signal().exchange(sig) != 0) {  // the second one: stop now
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  static const char msg[] =
      "\nrecdistill: stopping at the next checkpoint or step boundary (signal again to stop at once)\n";
  [[maybe_unused]] const ssize_t w = ::write(2, msg, sizeof msg - 1);
  errno = saved_errno;
}
}  // namespace detail

// The signal that asked for a stop (SIGINT, SIGTERM), or 0.
inline int interrupt_requested() { return detail::interrupt_signal().load(std::memory_order_relaxed); }

// For tests: forget a request.
inline void clear_interrupt() { detail::interrupt_signal().store(0); }

inline void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = detail::recdistill_on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

inline const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

// Thrown by the trainer after the checkpoint of the epoch during which a stop was asked for.
// Callers up the stack rethrow it with more said (the run folder, how to resume).
struct Interrupted : Error {
  int signal;
  int epoch;  // the last finished epoch (its checkpoint is committed when the run has a folder)
  std::string run_dir;  // the run folder, once an app has said it ("" before)
  Interrupted(int sig, int ep, const std::string& message = "", std::string folder = "")
      : Error(message.empty() ? cat("interrupted by ", signal_name(sig), " after epoch ", ep) : message),
        signal(sig), epoch(ep), run_dir(std::move(folder)) {}
};

// Throws Interrupted (epoch 0: no training of this call has finished) when a stop was asked for:
// what an app calls between its steps (before a training, between stages and runs).
inline void throw_if_interrupted(const char* where) {
  if (const int sig = interrupt_requested())
    throw Interrupted(sig, 0, cat("interrupted by ", signal_name(sig), " ", where));
}

}  // namespace recdistill
