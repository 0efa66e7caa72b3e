// recdistill/io/progress.hpp: feedback while a long job runs.
//
// On a terminal: one line redrawn in place with a carriage return (no ANSI codes), at most
// about ten times a second:
//
//   epoch 3/200 [#########.........] 120/345 steps  52.1 steps/s  ETA 0:04  loss 5.1234
//
// Anywhere else (CI logs, files, pipes): plain lines only, never '\r', never escape codes:
// the line the caller gives when a bar finishes (one per epoch), and optionally a status line
// every `plain_every_seconds` so a long epoch still shows signs of life.
//
// The mode is picked from isatty() on the output's file descriptor (TERM=dumb counts as not a
// terminal) unless ProgressOptions::mode forces it (tests), or the environment variable
// RECDISTILL_PROGRESS is `terminal` or `plain` (users: a bar through `tee`, plain lines in a
// terminal multiplexer's log).
#pragma once
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace recdistill::io {

enum class ProgressMode { automatic, terminal, plain };

struct ProgressOptions {
  ProgressMode mode = ProgressMode::automatic;
  int fd = STDOUT_FILENO;            // checked with isatty() when mode is automatic
  std::string unit = "steps";        // what is counted: "steps/s"; below 1/s shown as "12.5 s/step"
  double redraw_seconds = 0.1;       // terminal: minimum time between two redraws
  double plain_every_seconds = 0;    // plain: a status line this often (0 = none)
  int bar_width = 24;
  int width = 0;                     // terminal columns (0 = ask the terminal, else 80)
  std::function<double()> clock;     // seconds, monotonic; empty = steady_clock (tests inject one)
};

// "0:07", "12:34", "1:02:03"; "--:--" when unknown.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

// A rate with three significant digits at most: "52.1", "1234", "0.813".
inline std::string format_rate(double r) {
  char buf[48];
  if (!std::isfinite(r)) return "--";
  std::snprintf(buf, sizeof buf, r >= 100 ? "%.0f" : r >= 10 ? "%.1f" : r >= 1 ? "%.2f" : "%.3f", r);
  return buf;
}

class Progress {
 public:
  explicit Progress(std::ostream& os, ProgressOptions opt = {}) : os_(os), opt_(std::move(opt)) {
    if (opt_.mode == ProgressMode::automatic) {
      const char* term = std::getenv("TERM");
      const char* force = std::getenv("RECDISTILL_PROGRESS");
      const bool dumb = term && std::string_view(term) == "dumb";
      terminal_ = ::isatty(opt_.fd) == 1 && !dumb;
      if (force && std::string_view(force) == "terminal") terminal_ = true;
      if (force && std::string_view(force) == "plain") terminal_ = false;
    } else {
      terminal_ = opt_.mode == ProgressMode::terminal;
    }
    if (terminal_ && opt_.width <= 0) {
      winsize ws{};
      opt_.width = (::ioctl(opt_.fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) ? ws.ws_col : 80;
    }
    if (opt_.width <= 0) opt_.width = 80;
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { clear(); }

  bool on_terminal() const { return terminal_; }

  // Starts a bar: `label` leads the line ("epoch 3/200"), `total` is the number of units.
  void begin(std::string label, int64_t total) {
    clear();
    label_ = std::move(label);
    total_ = std::max<int64_t>(total, 0);
    done_ = 0;
    start_ = now();
    last_draw_ = -1e300;
    last_plain_ = start_;
    status_.clear();
  }

  // `done` units of the current bar are finished; `status` is shown after the ETA ("loss
  // 5.12"). Redraws when due: always for the first and the last unit, otherwise at most once
  // per redraw_seconds.
  void update(int64_t done, std::string_view status = {}) {
    done_ = std::clamp<int64_t>(done, 0, std::max<int64_t>(total_, done));
    status_.assign(status);
    const double t = now();
    if (terminal_) {
      const bool edge = done_ <= 1 || done_ >= total_;
      if (edge || t - last_draw_ >= opt_.redraw_seconds) {
        draw(t);
        last_draw_ = t;
      }
    } else if (opt_.plain_every_seconds > 0 && t - last_plain_ >= opt_.plain_every_seconds) {
      os_ << status_line(t) << '\n' << std::flush;
      last_plain_ = t;
    }
  }

  // Ends the current bar and prints `text` as a whole line in its place (the per-epoch line).
  void finish(std::string_view text) {
    clear();
    os_ << text << '\n' << std::flush;
    total_ = -1;
  }

  // Prints a whole line without ending the bar: on a terminal the bar is cleared, the line
  // printed and the bar drawn again below it.
  void line(std::string_view text) {
    const bool had_bar = drawn_ > 0;
    clear();
    os_ << text << '\n' << std::flush;
    if (had_bar && total_ >= 0) draw(now());
  }

  // The status text of the current bar without the bar itself: what plain mode prints.
  std::string status_line() const { return status_line(now()); }

  double elapsed() const { return now() - start_; }

 private:
  double now() const {
    if (opt_.clock) return opt_.clock();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  // Rate and ETA of the current bar, from its start (a steady rate within an epoch).
  std::string rate_eta(double t) const {
    const double dt = t - start_;
    const double rate = (dt > 0 && done_ > 0) ? double(done_) / dt : NAN;
    const double eta = std::isfinite(rate) && rate > 0 ? double(total_ - done_) / rate : NAN;
    // Slow units (runs of an experiment) read better as seconds each: "41.2 s/run".
    if (std::isfinite(rate) && rate < 1) {
      std::string one = opt_.unit;
      if (one.size() > 1 && one.back() == 's') one.pop_back();
      return format_rate(1 / rate) + " s/" + one + "  ETA " + format_duration(eta);
    }
    return format_rate(rate) + " " + opt_.unit + "/s  ETA " + format_duration(eta);
  }

  std::string counts() const {
    return std::to_string(done_) + "/" + std::to_string(total_) + " " + opt_.unit;
  }

  std::string status_line(double t) const {
    std::string s = label_.empty() ? "" : label_ + ": ";
    s += counts() + "  " + rate_eta(t);
    if (!status_.empty()) s += "  " + status_;
    return s;
  }

  void draw(double t) {
    std::string bar = "[";
    const int w = std::max(opt_.bar_width, 1);
    const int fill = total_ > 0 ? int(double(done_) * w / double(total_)) : 0;
    bar.append(size_t(fill), '#');
    bar.append(size_t(w - fill), '.');
    bar += "]";
    std::string s = label_.empty() ? "" : label_ + " ";
    s += bar + " " + counts() + "  " + rate_eta(t);
    if (!status_.empty()) s += "  " + status_;
    // Never wider than the terminal: a wrapped line cannot be redrawn with '\r'.
    const size_t max = size_t(std::max(opt_.width - 1, 10));
    if (s.size() > max) s.resize(max);
    const size_t n = s.size();
    if (n < drawn_) s.append(drawn_ - n, ' ');  // cover what the previous draw left
    os_ << '\r' << s << std::flush;
    drawn_ = n;
  }

  // Terminal: blanks the drawn bar and returns to column 0 (spaces, not escape codes).
  void clear() {
    if (!terminal_ || drawn_ == 0) return;
    os_ << '\r' << std::string(drawn_, ' ') << '\r' << std::flush;
    drawn_ = 0;
  }

  std::ostream& os_;
  ProgressOptions opt_;
  bool terminal_ = false;
  std::string label_, status_;
  int64_t total_ = -1, done_ = 0;
  double start_ = 0, last_draw_ = -1e300, last_plain_ = 0;
  size_t drawn_ = 0;  // characters of the bar now on screen
};

// The trainer's view: one bar per epoch over its steps, the loss of the last step as status,
// and the caller's per-epoch summary line in place of the bar when the epoch ends. `on_step`
// takes anything with the trainer's StepLog fields (epoch, step, steps, loss), so this header
// does not depend on the trainer; `step` is the 1-based index of the step just finished.
class TrainProgress {
 public:
  TrainProgress(std::ostream& os, int epochs, ProgressOptions opt = {})
      : progress_(os, std::move(opt)), epochs_(epochs) {}

  bool on_terminal() const { return progress_.on_terminal(); }
  // The run's length once the model has said it (0 = unknown: "epoch 3" without "/N").
  void set_epochs(int epochs) { epochs_ = epochs; }

  void on_step(int epoch, int step, int steps, double loss) {
    if (epoch != epoch_) {
      epoch_ = epoch;
      progress_.begin("epoch " + std::to_string(epoch) + (epochs_ > 0 ? "/" + std::to_string(epochs_) : ""),
                      steps);
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "loss %.4f", loss);
    progress_.update(step, buf);
  }
  template <class StepLike>
  void on_step(const StepLike& s) {
    on_step(s.epoch, s.step, s.steps, s.loss);
  }

  // The epoch's summary line (metrics): replaces the bar on a terminal, is the epoch's one
  // line otherwise.
  void epoch_line(std::string_view text) {
    progress_.finish(text);
    epoch_ = -1;
  }
  // Any other line (warnings, notes) without losing the bar.
  void line(std::string_view text) { progress_.line(text); }

  Progress& progress() { return progress_; }

 private:
  Progress progress_;
  int epochs_ = 0, epoch_ = -1;
};

}  // namespace recdistill::io
