// Log levels and the one JSON-lines schema: {"time": ISO-8601 UTC, "event": ..., fields}.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "recdistill/io/log.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("recdistill_log_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> v;
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

}  // namespace

TEST(Log, Levels) {
  EXPECT_EQ(io::parse_log_level("debug"), io::LogLevel::debug);
  EXPECT_EQ(io::parse_log_level("quiet"), io::LogLevel::quiet);
  try {
    io::parse_log_level("loud", "--log-level");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--log-level: expected quiet, info, verbose or debug, found 'loud'");
  }
  EXPECT_EQ(io::log_level_from_flags(false, false, false), io::LogLevel::info);
  EXPECT_EQ(io::log_level_from_flags(true, false, false), io::LogLevel::quiet);
  EXPECT_EQ(io::log_level_from_flags(true, true, false), io::LogLevel::verbose);
  EXPECT_EQ(io::log_level_from_flags(false, true, true), io::LogLevel::debug);
  EXPECT_TRUE(io::LogLevel::debug > io::LogLevel::info);
}

TEST(Log, TimeIsIso8601Utc) {
  using namespace std::chrono;
  const auto t = sys_days(year(2026) / 11 / 26) + hours(22) + minutes(51) + seconds(50) + milliseconds(7);
  EXPECT_EQ(io::iso8601_utc(t), "2026-11-26T22:51:50.007Z");
  EXPECT_TRUE(std::regex_match(io::iso8601_utc(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST(Log, EncodingOfValues) {
  EXPECT_EQ(io::json_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(io::json_number(NAN), "null");
  EXPECT_EQ(io::json_number(INFINITY), "null");
  EXPECT_EQ(io::json_number(0.1), "0.1");
  EXPECT_EQ(std::stod(io::json_number(1.0 / 3.0)), 1.0 / 3.0);  // round trip
  io::JsonFields f;
  f.add("epoch", 3).add("loss", 0.5).add("ok", true).add("name", "x").add("valid", std::map<std::string, double>{{"HR@10", 0.25}});
  EXPECT_EQ(io::json_log_line("epoch", f, "T"),
            "{\"time\": \"T\", \"event\": \"epoch\", \"epoch\": 3, \"loss\": 0.5, \"ok\": true, \"name\": \"x\", "
            "\"valid\": {\"HR@10\": 0.25}}\n");
}

TEST(Log, WriterAppendsParseableLinesOfOneSchema) {
  const fs::path d = temp_dir("schema");
  const fs::path file = d / "events.jsonl";
  {
    io::JsonlWriter w(file.string());
    w.write("start", io::JsonFields().add("config", "a \"quoted\" path"));
    w.write("step", io::JsonFields().add("loss", NAN).add("step", 7));
  }
  {
    io::JsonlWriter w(file.string());  // appends, never truncates
    w.write("end");
  }
  const auto lines = lines_of(file);
  ASSERT_EQ(lines.size(), 3u);
  simdjson::dom::parser parser;
  const char* events[] = {"start", "step", "end"};
  for (size_t i = 0; i < lines.size(); ++i) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(lines[i]).get(doc), simdjson::SUCCESS) << lines[i];
    simdjson::dom::object obj;
    ASSERT_EQ(doc.get(obj), simdjson::SUCCESS);
    auto it = obj.begin();
    EXPECT_EQ(std::string_view(it.key()), "time");  // the first two keys, always
    ++it;
    EXPECT_EQ(std::string_view(it.key()), "event");
    EXPECT_EQ(std::string_view(obj["event"].get_string().value()), events[i]);
  }
  EXPECT_TRUE(parser.parse(lines[1]).get_object().value()["loss"].is_null());
  fs::remove_all(d);
}

TEST(Log, KilledWriterLeavesWholeLines) {
  const fs::path d = temp_dir("kill");
  const fs::path file = d / "events.jsonl";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    io::JsonlWriter w(file.string());
    for (int i = 0; i < 50; ++i) w.write("step", io::JsonFields().add("step", i).add("loss", 1.0 / (i + 1)));
    ::pause();  // never returns normally: killed below with nothing flushed by an exit
    ::_exit(0);
  }
  // Wait (up to 10 s) until all 50 lines are visible, then kill without any chance to flush.
  for (int tries = 0; tries < 1000 && lines_of(file).size() < 50; ++tries)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::ifstream in(file, std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back(), '\n');
  const auto lines = lines_of(file);
  EXPECT_EQ(lines.size(), 50u);
  simdjson::dom::parser parser;
  for (const auto& l : lines) EXPECT_EQ(parser.parse(l).error(), simdjson::SUCCESS) << l;
  fs::remove_all(d);
}

TEST(Log, UnwritableFileIsAClearError) {
  try {
    io::JsonlWriter w("/nonexistent/dir/events.jsonl");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/events.jsonl: cannot open log file"), std::string::npos)
        << e.what();
  }
}

}  // namespace RD_TEST_FILE
