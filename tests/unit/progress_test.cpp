// The progress reporter: redrawn line under a pseudo-terminal, plain lines on a pipe.
// No test asserts a timing: the clock is injected wherever a number is checked.
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>

#include "recdistill/io/progress.hpp"
#include "recdistill/train/result.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;

namespace {

// What a trainer does: 2 epochs of 8 steps, then the epoch's summary line. The clock advances
// 0.5 s per call so the numbers are the same on every machine.
void fake_training(std::ostream& os) {
  double t = 0;
  io::ProgressOptions opt;
  opt.redraw_seconds = 0;  // draw every step, so the test sees several redraws
  opt.clock = [&t] { return t += 0.5; };
  io::TrainProgress p(os, 2, opt);
  os << (p.on_terminal() ? "mode=terminal" : "mode=plain") << "\n" << std::flush;
  for (int e = 1; e <= 2; ++e) {
    for (int s = 1; s <= 8; ++s) p.on_step(e, s, 8, 5.0 - 0.1 * s);
    p.epoch_line("epoch " + std::to_string(e) + " done  loss 4.2000");
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // 0 = EOF (pipe); EIO = the pty's slave side closed
    }
  }
  return out;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Runs fake_training in a child whose stdout is a pseudo-terminal 100 columns wide.
std::string under_pty() {
  int master = -1;
  winsize ws{};
  ws.ws_row = 24;
  ws.ws_col = 100;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) return "forkpty failed";
  if (pid == 0) {
    ::setenv("TERM", "xterm", 1);
    ::unsetenv("RECDISTILL_PROGRESS");
    fake_training(std::cout);
    std::cout.flush();
    ::_exit(0);
  }
  const std::string out = read_all(master);
  ::close(master);
  EXPECT_EQ(wait_child(pid), 0);
  return out;
}

// Runs fake_training in a child whose stdout is a pipe.
std::string under_pipe() {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::setenv("TERM", "xterm", 1);
    ::unsetenv("RECDISTILL_PROGRESS");
    fake_training(std::cout);
    std::cout.flush();
    ::_exit(0);
  }
  ::close(fds[1]);
  const std::string out = read_all(fds[0]);
  ::close(fds[0]);
  EXPECT_EQ(wait_child(pid), 0);
  return out;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Progress, PseudoTerminalRedrawsOneLineWithCarriageReturns) {
  const std::string out = under_pty();
  ASSERT_NE(out.find("mode=terminal"), std::string::npos) << out;
  // Every step redraws in place: '\r' followed by the bar (the tty's own "\r\n" for newlines
  // is not counted).
  EXPECT_GE(count(out, "\repoch 1/2 ["), 8u) << out;
  EXPECT_GE(count(out, "\repoch 2/2 ["), 8u) << out;
  EXPECT_NE(out.find("8/8 steps"), std::string::npos);
  // Rate and ETA fields: at 0.5 s per clock call the rate is a number of steps/s and the ETA
  // a m:ss duration.
  EXPECT_TRUE(std::regex_search(out, std::regex("[0-9.]+ steps/s  ETA [0-9]+:[0-9]{2}"))) << out;
  EXPECT_NE(out.find("loss 4.9000"), std::string::npos);
  // The per-epoch line replaces the bar.
  EXPECT_NE(out.find("epoch 1 done  loss 4.2000"), std::string::npos);
  EXPECT_NE(out.find("epoch 2 done  loss 4.2000"), std::string::npos);
  // No line is ever wider than the terminal (a wrapped line cannot be redrawn).
  std::string seg;
  for (char c : out) {
    if (c == '\r' || c == '\n') {
      EXPECT_LT(seg.size(), 100u) << seg;
      seg.clear();
    } else {
      seg += c;
    }
  }
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no escape codes needed";
}

TEST(Progress, PipeGetsPlainLinesOnly) {
  const std::string out = under_pipe();
  EXPECT_NE(out.find("mode=plain"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('['), std::string::npos) << "no bar: " << out;
  EXPECT_EQ(out, "mode=plain\nepoch 1 done  loss 4.2000\nepoch 2 done  loss 4.2000\n");
}

TEST(Progress, ForcedModes) {
  std::ostringstream term, plain;
  io::ProgressOptions o;
  o.mode = io::ProgressMode::terminal;
  EXPECT_TRUE(io::Progress(term, o).on_terminal());
  o.mode = io::ProgressMode::plain;
  EXPECT_FALSE(io::Progress(plain, o).on_terminal());
}

TEST(Progress, EnvironmentForcesTheModeWhenAutomatic) {
  std::ostringstream os;
  io::ProgressOptions o;
  o.fd = -1;  // not a terminal
  ::setenv("RECDISTILL_PROGRESS", "terminal", 1);
  EXPECT_TRUE(io::Progress(os, o).on_terminal());
  ::setenv("RECDISTILL_PROGRESS", "plain", 1);
  EXPECT_FALSE(io::Progress(os, o).on_terminal());
  o.mode = io::ProgressMode::terminal;  // an explicit mode wins
  EXPECT_TRUE(io::Progress(os, o).on_terminal());
  ::unsetenv("RECDISTILL_PROGRESS");
  o.mode = io::ProgressMode::automatic;
  EXPECT_FALSE(io::Progress(os, o).on_terminal());
}

TEST(Progress, RateAndEtaFromTheInjectedClock) {
  double t = 0;
  std::ostringstream os;
  io::ProgressOptions o;
  o.mode = io::ProgressMode::terminal;
  o.width = 200;
  o.clock = [&t] { return t; };
  io::Progress p(os, o);
  p.begin("epoch 1/3", 10);
  t = 5;
  p.update(5, "loss 1.0");
  // 5 steps in 5 s: 1 step/s, 5 steps left: 5 s.
  EXPECT_NE(os.str().find("5/10 steps  1.00 steps/s  ETA 0:05  loss 1.0"), std::string::npos) << os.str();
  // Below one unit per second the rate reads as seconds per unit.
  std::ostringstream slow;
  o.unit = "runs";
  io::Progress runs(slow, o);
  t = 0;
  runs.begin("experiment", 4);
  t = 20;
  runs.update(1);
  EXPECT_NE(slow.str().find("1/4 runs  20.0 s/run  ETA 1:00"), std::string::npos) << slow.str();
  EXPECT_EQ(io::format_duration(3725), "1:02:05");
  EXPECT_EQ(io::format_duration(NAN), "--:--");
}

TEST(Progress, RedrawsAtMostTenTimesASecond) {
  double t = 0;
  std::ostringstream os;
  io::ProgressOptions o;
  o.mode = io::ProgressMode::terminal;
  o.clock = [&t] { return t; };
  io::Progress p(os, o);
  p.begin("epoch 1", 1000);
  for (int s = 1; s <= 1000; ++s) {
    t += 0.001;  // 1000 steps in 1 s of fake time
    p.update(s);
  }
  const size_t draws = count(os.str(), "\repoch 1 [");
  EXPECT_GE(draws, 3u);   // first, some in between, last
  EXPECT_LE(draws, 13u);  // ~10 per second plus the first and the last
  EXPECT_NE(os.str().find("1000/1000 steps"), std::string::npos);
}

TEST(Progress, PlainStatusLinesEveryInterval) {
  double t = 0;
  std::ostringstream os;
  io::ProgressOptions o;
  o.mode = io::ProgressMode::plain;
  o.plain_every_seconds = 10;
  o.clock = [&t] { return t; };
  io::Progress p(os, o);
  p.begin("epoch 1/2", 100);
  for (int s = 1; s <= 100; ++s) {
    t += 1;
    p.update(s);
  }
  p.finish("epoch 1 summary");
  const std::string out = os.str();
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(count(out, "epoch 1/2: "), 10u) << out;  // every 10 s of 100 s
  EXPECT_NE(out.find("epoch 1/2: 10/100 steps  1.00 steps/s  ETA 1:30\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 16), "epoch 1 summary\n");
}

TEST(Progress, LineKeepsTheBar) {
  double t = 0;
  std::ostringstream os;
  io::ProgressOptions o;
  o.mode = io::ProgressMode::terminal;
  o.width = 80;
  o.clock = [&t] { return t += 1; };
  io::Progress p(os, o);
  p.begin("run", 4);
  p.update(1);
  p.line("a note");
  const std::string out = os.str();
  const size_t note = out.find("a note\n");
  ASSERT_NE(note, std::string::npos);
  EXPECT_NE(out.find("\rrun [", note), std::string::npos) << "bar drawn again after the line";
}

TEST(Progress, TakesTheTrainersStepLog) {
  std::ostringstream os;
  io::ProgressOptions o;
  o.mode = io::ProgressMode::terminal;
  o.width = 120;
  io::TrainProgress p(os, 5, o);
  StepLog s;
  s.epoch = 2;
  s.steps = 40;
  s.step = 40;
  s.loss = 3.25;
  p.on_step(s);
  EXPECT_NE(os.str().find("\repoch 2/5 [########################] 40/40 steps"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("loss 3.2500"), std::string::npos) << os.str();
  p.epoch_line("epoch   2  loss 3.2500");
  EXPECT_EQ(os.str().substr(os.str().size() - 23), "epoch   2  loss 3.2500\n");
}

}  // namespace RD_TEST_FILE
