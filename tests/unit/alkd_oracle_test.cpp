// The LLM oracle of active distillation (methods/alkd_answers.hpp, methods/alkd_oracle.hpp):
// the strict reader on every defect of the shipped answers and on malformed files, the §1.1
// facts, validation counts and weights, upstream's row duplication totals (§6.1), the raw-text
// parser, the prompt, the summarised hints (§4.1), and the oracle offline (recorded answers in
// the cache) and live against a fake OpenAI-compatible server on the loopback interface.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "../common/fake_llm_server.hpp"
#include "recdistill/methods/alkd_answers.hpp"
#include "recdistill/methods/alkd_oracle.hpp"

namespace recdistill {
namespace {

namespace fs = std::filesystem;
using namespace alkd;

const std::string kMl = std::string(RECDISTILL_SOURCE_DIR) + "/data/alkdrec-ml/";

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("recdistill_alkd_oracle_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const RecordedAnswers& shipped() {
  static const RecordedAnswers a = read_answer_file(kMl + "llm_answers.jsonl");
  return a;
}

// session_id -> (split, target) from sessions.tsv.
struct SessionRow {
  std::string split;
  int32_t target = -1;
};
const std::unordered_map<std::string, SessionRow>& sessions() {
  static const auto rows = [] {
    std::unordered_map<std::string, SessionRow> out;
    std::ifstream in(kMl + "sessions.tsv");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      std::string x;
      while (std::getline(ss, x, '\t')) f.push_back(x);
      out[f[0]] = {f[1], int32_t(std::stoi(f[3]))};
    }
    return out;
  }();
  return rows;
}

std::vector<std::string> selection(const std::string& name, size_t n) {
  std::ifstream in(kMl + "selections/" + name + ".txt");
  std::vector<std::string> out;
  std::string s;
  while (out.size() < n && in >> s) out.push_back(s);
  return out;
}

std::string error_of(const std::string& text) {
  std::ostringstream warn;
  try {
    parse_answer_file(text, "a.jsonl", &warn);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- the recorded answer file

TEST(AlkdAnswers, ReaderSeesEveryDefectOfTheShippedFile) {
  const auto& a = shipped();
  ASSERT_EQ(a.records.size(), 4992u);
  EXPECT_EQ(a.duplicates, 0u);
  const RecordedAnswer* first = a.find("2604");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->line, 1u);
  EXPECT_EQ(first->ranked_items.size(), 25u);
  EXPECT_EQ(first->ranked_items[0], 217);
  EXPECT_EQ(first->target_position, 25);
  EXPECT_EQ(first->json.substr(0, 57), "{\"session_id\":2604,\"ranked_items\":[217,2058,4270,940,699,");

  // The empty list (the only list that is not 25 long): answered but unusable.
  const RecordedAnswer* empty = a.find("1542");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->line, 3916u);
  EXPECT_TRUE(empty->ranked_items.empty());
  const auto ve = validate_answer(empty->ranked_items, 8475, sessions().at("1542").target);
  EXPECT_FALSE(ve.usable);
  EXPECT_EQ(ve.counts.unusable, 1);
  EXPECT_EQ(ve.target_position, 25);

  // Duplicates: session 5696 repeats 4038 once, 5854 five times and 224 four times.
  const RecordedAnswer* dup = a.find("5696");
  ASSERT_TRUE(dup);
  const auto vd = validate_answer(dup->ranked_items, 8475, sessions().at("5696").target);
  EXPECT_TRUE(vd.usable);
  EXPECT_EQ(vd.counts.repeats, 10);
  EXPECT_EQ(vd.counts.out_of_range, 0);
  ASSERT_EQ(vd.items.size(), 15u);
  EXPECT_EQ(vd.items[11], (std::pair<int32_t, int>(6655, 12)));  // raw positions survive the drop at 11
  EXPECT_EQ(vd.items[14], (std::pair<int32_t, int>(224, 15)));
  int units = 0;
  for (const auto& [item, w] : weighted_items(vd)) units += w;
  EXPECT_EQ(units, 5 * 3 + 9 * 2 + 1);

  // The out-of-range id: session 3296 has 9258 at position 15 (n = 8,475).
  const RecordedAnswer* oor = a.find("3296");
  ASSERT_TRUE(oor);
  EXPECT_EQ(oor->ranked_items[15], 9258);
  const auto vo = validate_answer(oor->ranked_items, 8475, sessions().at("3296").target);
  EXPECT_EQ(vo.counts.out_of_range, 1);
  EXPECT_EQ(vo.items.size() + size_t(vo.counts.repeats), 24u);
  for (const auto& [item, p] : vo.items) EXPECT_NE(p, 15);

  // The recorded target_position is validation's recomputed one, for every record.
  size_t same = 0;
  for (const auto& r : a.records)
    same += validate_answer(r.ranked_items, 8475, sessions().at(r.session_id).target).target_position == r.target_position;
  EXPECT_EQ(same, a.records.size());
}

TEST(AlkdAnswers, FactsOfTheShippedFileHold) {
  std::unordered_set<std::string> train;
  for (const auto& [id, row] : sessions())
    if (row.split == "train") train.insert(id);
  ASSERT_EQ(train.size(), 7393u);
  const MlAnswerFacts f = check_ml_answer_facts(shipped(), train, 8475);
  EXPECT_TRUE(f.ok()) << f.report() << " / " << (f.failures.empty() ? "" : f.failures[0]);
  EXPECT_NO_THROW(require_ml_answer_facts(f, "llm_answers.jsonl"));
  EXPECT_EQ(f.records, 4992u);
  EXPECT_EQ(f.empty_lists, 1u);
  EXPECT_EQ(f.lists_not_25, 1u);
  EXPECT_EQ(f.not_25_sessions, std::vector<std::string>{"1542"});
  EXPECT_EQ(f.lists_with_duplicates, 509u);
  ASSERT_EQ(f.out_of_range.size(), 1u);
  EXPECT_EQ(f.out_of_range[0].session_id, "3296");
  EXPECT_EQ(f.out_of_range[0].position, 15);
  EXPECT_EQ(f.out_of_range[0].id, 9258);
  EXPECT_NEAR(f.hits.at25, 2639.0 / 4992, 1e-12);
  EXPECT_NEAR(f.hits.at10, 1261.0 / 4992, 1e-12);
  EXPECT_NEAR(f.hits.at5, 757.0 / 4992, 1e-12);
  EXPECT_EQ(f.report(),
            "4992 records (0 repeated, 0 not for train sessions); 1 empty lists, 1 of length other than 25, 509 with "
            "duplicates, 1 out-of-range ids (session 3296 position 15: 9258); hit rates @25/@10/@5 0.529/0.253/0.152");

  // Another set of sessions or items breaks named facts.
  train.erase("2604");
  const MlAnswerFacts g = check_ml_answer_facts(shipped(), train, 10000);
  EXPECT_FALSE(g.ok());
  ASSERT_EQ(g.failures.size(), 2u);
  EXPECT_EQ(g.failures[0], "expected every record to be for a train session, found 1 that are not");
  EXPECT_NE(g.failures[1].find("found 0"), std::string::npos) << g.failures[1];
  try {
    require_ml_answer_facts(g, "x.jsonl");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl: not the shipped ML answers"), std::string::npos) << e.what();
  }
}

TEST(AlkdAnswers, MalformedFilesNameFileAndLine) {
  const std::string good = "{\"session_id\": 1, \"ranked_items\": [3, 4], \"target_position\": 1}\n";
  const struct {
    std::string text, want;
  } cases[] = {
      {good + "[1, 2]\n", "a.jsonl:2: expected a JSON object, found an array"},
      {good + "{\"ranked_items\": [], \"target_position\": 25}\n", "a.jsonl:2: key 'session_id': expected an integer or a digit string, found no such key"},
      {good + "{\"session_id\": 2, \"target_position\": 25}\n", "a.jsonl:2: key 'ranked_items': expected an array of item ids, found no such key"},
      {good + "{\"session_id\": 2, \"ranked_items\": []}\n", "a.jsonl:2: key 'target_position': expected an integer, found no such key"},
      {good + "{\"session_id\": 2.5, \"ranked_items\": [], \"target_position\": 25}\n", "a.jsonl:2: key 'session_id': expected an integer or a digit string, found a non-integer number"},
      {good + "{\"session_id\": -2, \"ranked_items\": [], \"target_position\": 25}\n", "a.jsonl:2: key 'session_id': expected a non-negative integer, found -2"},
      {good + "{\"session_id\": \"s2\", \"ranked_items\": [], \"target_position\": 25}\n", "a.jsonl:2: key 'session_id': expected a digit string of 1 to 19 digits, found 's2'"},
      {good + "{\"session_id\": 2, \"ranked_items\": \"1 2\", \"target_position\": 25}\n", "a.jsonl:2: key 'ranked_items': expected an array of item ids, found a string"},
      {good + "{\"session_id\": 2, \"ranked_items\": [1, -3], \"target_position\": 25}\n", "a.jsonl:2: key 'ranked_items': entry 1: expected a non-negative integer id, found -3"},
      {good + "{\"session_id\": 2, \"ranked_items\": [1, 2.5], \"target_position\": 25}\n", "a.jsonl:2: key 'ranked_items': entry 1: expected a non-negative integer id, found a non-integer number"},
      {good + "{\"session_id\": 2, \"ranked_items\": [\"7\"], \"target_position\": 25}\n", "a.jsonl:2: key 'ranked_items': entry 0: expected a non-negative integer id, found a string"},
      {good + "{\"session_id\": 2, \"ranked_items\": [18446744073709551615], \"target_position\": 25}\n", "a.jsonl:2: key 'ranked_items': entry 0: expected a non-negative integer id, found an integer above 2^63 - 1"},
      {good + "{\"session_id\": 2, \"ranked_items\": [], \"target_position\": \"25\"}\n", "a.jsonl:2: key 'target_position': expected an integer, found a string"},
      {good + "{\"session_id\": 2, \"ranked_items\": [], \"target_position\": 26}\n", "a.jsonl:2: key 'target_position': expected an integer in [0, 25], found 26"},
      {good + "{\"session_id\": 2, \"ranked_items\": [5], \"target_position\": 3}\n", "a.jsonl:2: key 'target_position': 3 is past the end of ranked_items (1 entries"},
      {good + "{\"session_id\": 2, \"ranked_items\": [], \"target_position\": 25, \"model\": \"x\"}\n", "a.jsonl:2: unexpected key 'model' (expected only session_id, ranked_items, target_position)"},
      {good + "\n" + good, "a.jsonl:2: an empty line"},
      {good + "{\"session_id\": 2, \"ranked_items\": [1, 2", "a.jsonl:2: the last line is cut off"},
      {good + "{\"session_id\": 2, \"ranked_items\": [1], \"target_position\": 25}\n{\"sess", "a.jsonl:3: the last line is cut off"},
      {good + "{\"session_id\": \"\xff\xfe\", \"ranked_items\": [], \"target_position\": 25}\n", "a.jsonl:2: expected one JSON object per line, found invalid JSON"},
      {"\x01\x02junk\n", "a.jsonl:1: expected one JSON object per line, found invalid JSON"},
      {"", "a.jsonl: the file is empty"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.text);
    EXPECT_EQ(e.substr(0, c.want.size()), c.want) << "input: " << c.text;
  }
  // Accepted: a BOM, CRLF, a digit-string id, a last line without newline, trailing blank lines.
  std::ostringstream warn;
  const auto ok = parse_answer_file("\xEF\xBB\xBF{\"session_id\": \"7\", \"ranked_items\": [], \"target_position\": 25}\r\n"
                                    "{\"session_id\": 8, \"ranked_items\": [1], \"target_position\": 0}\n\n",
                                    "b.jsonl", &warn);
  ASSERT_EQ(ok.records.size(), 2u);
  EXPECT_EQ(ok.records[0].session_id, "7");
  EXPECT_EQ(ok.records[1].line, 2u);
  EXPECT_EQ(parse_answer_file(good.substr(0, good.size() - 1), "c.jsonl", &warn).records.size(), 1u);
  EXPECT_TRUE(warn.str().empty());
  // A repeated session: a warning, counted, the first record kept.
  const auto d = parse_answer_file(good + "{\"session_id\": \"1\", \"ranked_items\": [9], \"target_position\": 25}\n", "d.jsonl", &warn);
  ASSERT_EQ(d.records.size(), 1u);
  EXPECT_EQ(d.duplicates, 1u);
  EXPECT_EQ(d.duplicate_lines, std::vector<size_t>{2});
  EXPECT_EQ(d.find("1")->ranked_items, (std::vector<int64_t>{3, 4}));
  EXPECT_NE(warn.str().find("d.jsonl: 1 records repeat an earlier session_id (first at line 2)"), std::string::npos) << warn.str();
}

// ---------------------------------------------------------------- validation and weights

TEST(AlkdAnswers, ValidationCountsEachRule) {
  // Raw list of 28: positions 0-24 used; out of range at 2 and 9, repeats at 4 and 6, the
  // target (7) first at 5, three entries past 24.
  std::vector<int64_t> raw = {1, 2, 100, 3, 1, 7, 2, 8, 9, 250, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27};
  const auto v = validate_answer(raw, 100, 7);
  EXPECT_EQ(v.counts.out_of_range, 2);
  EXPECT_EQ(v.counts.repeats, 2);
  EXPECT_EQ(v.counts.truncated, 3);
  EXPECT_EQ(v.counts.non_candidates, 0);
  EXPECT_EQ(v.target_position, 5);
  ASSERT_EQ(v.items.size(), 21u);
  EXPECT_EQ(v.items[0], (std::pair<int32_t, int>(1, 0)));
  EXPECT_EQ(v.items[3], (std::pair<int32_t, int>(7, 5)));
  EXPECT_EQ(v.items.back(), (std::pair<int32_t, int>(24, 24)));
  // The target past position 24 is absent (25); an unknown target (-1) too.
  EXPECT_EQ(validate_answer(raw, 100, 26).target_position, 25);
  EXPECT_EQ(validate_answer(raw, 100, -1).target_position, 25);
  // Candidates: counted, dropped only with restrict_to_candidates.
  const std::vector<int32_t> cands = {1, 2, 3, 7, 8};
  ValidateOptions vo;
  vo.candidates = &cands;
  const auto c = validate_answer({1, 5, 2, 6, 5}, 100, 2, vo);
  EXPECT_EQ(c.counts.non_candidates, 2);
  EXPECT_EQ(c.counts.repeats, 1);
  EXPECT_EQ(c.items.size(), 4u);
  vo.restrict_to_candidates = true;
  const auto r = validate_answer({1, 5, 2, 6, 5}, 100, 2, vo);
  EXPECT_EQ(r.counts.non_candidates, 2);
  EXPECT_EQ(r.counts.dropped_non_candidates, 2);
  EXPECT_EQ(r.counts.repeats, 1);  // the second 5 is still a repeat
  EXPECT_EQ(r.items, (std::vector<std::pair<int32_t, int>>{{1, 0}, {2, 2}}));
  EXPECT_EQ(r.target_position, 2);
  // Everything dropped: answered but unusable.
  const auto u = validate_answer({100, 200}, 100, 3);
  EXPECT_FALSE(u.usable);
  EXPECT_EQ(u.counts.unusable, 1);
  ValidationCounts sum;
  sum += v.counts;
  sum += u.counts;
  EXPECT_EQ(sum.out_of_range, 4);
  EXPECT_EQ(sum.unusable, 1);
}

TEST(AlkdAnswers, AlphaByRawPosition) {
  const int want[] = {3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  for (int p = 0; p < 25; ++p) EXPECT_EQ(alpha_for_position(p), want[p]) << p;
  EXPECT_EQ(alpha_for_position(25), 0);
  EXPECT_EQ(alpha_for_position(-1), 0);
  std::vector<int64_t> full;
  for (int i = 0; i < 25; ++i) full.push_back(i);
  int units = 0;
  for (const auto& [item, w] : weighted_items(validate_answer(full, 100, 3))) units += w;
  EXPECT_EQ(units, 45);  // a full list carries 45 weight units
}

TEST(AlkdAnswers, LegacyRowDuplicationTotals) {
  std::vector<int64_t> full;
  for (int i = 0; i < 25; ++i) full.push_back(i % 20);  // repeats are kept
  const auto rows = legacy_row_duplication(full, 100);
  ASSERT_EQ(rows.size(), 25u);
  int total = 0;
  for (const auto& [item, copies] : rows) total += copies;
  EXPECT_EQ(total, 47);  // 6 x 3 + 10 x 2 + 9 x 1
  EXPECT_EQ(rows[5].second, 3);
  EXPECT_EQ(rows[6].second, 2);
  EXPECT_EQ(rows[15].second, 2);
  EXPECT_EQ(rows[16].second, 1);
  // Position 25 is used (one copy), later ones are not; out-of-range ids are skipped.
  std::vector<int64_t> long_list = full;
  long_list.push_back(50);
  long_list.push_back(51);
  long_list[3] = 1000;
  const auto lr = legacy_row_duplication(long_list, 100);
  ASSERT_EQ(lr.size(), 25u);
  EXPECT_EQ(lr.back(), (std::pair<int32_t, int>(50, 1)));

  // The spec's totals on the shipped answers (§6.1): 23,500 rows for the first 500 of the
  // ALKDRec selection, 23,498 for hardest (one out-of-range skip), and 22,084 weight units in
  // the de-duplicated ALKDRec set.
  const auto& a = shipped();
  const auto rows_of = [&](const std::string& name) {
    int64_t n = 0;
    for (const auto& s : selection(name, 500))
      for (const auto& [item, copies] : legacy_row_duplication(a.find(s)->ranked_items, 8475)) n += copies;
    return n;
  };
  EXPECT_EQ(rows_of("alkdrec"), 23500);
  EXPECT_EQ(rows_of("hardest"), 23498);
  int64_t units = 0;
  for (const auto& s : selection("alkdrec", 500))
    for (const auto& [item, w] : weighted_items(validate_answer(a.find(s)->ranked_items, 8475, sessions().at(s).target))) units += w;
  EXPECT_EQ(units, 22084);
}

TEST(AlkdAnswers, HitRates) {
  const auto h = llm_hit_rates(std::vector<int>{0, 4, 5, 9, 10, 24, 25, 25});
  EXPECT_EQ(h.sessions, 8u);
  EXPECT_DOUBLE_EQ(h.at5, 2.0 / 8);
  EXPECT_DOUBLE_EQ(h.at10, 4.0 / 8);
  EXPECT_DOUBLE_EQ(h.at25, 6.0 / 8);
  EXPECT_EQ(llm_hit_rates(std::vector<int>{}).sessions, 0u);
}

// ---------------------------------------------------------------- the raw-text parser

TEST(AlkdAnswers, ParserFindsIdsInOrder) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(parse_ranked_ids("[ID_12, ID_7, ID_3012]").ids, (V{12, 7, 3012}));
  EXPECT_EQ(parse_ranked_ids("[ID12, ID_7, <ID_5:Toy Story (1995)>]").ids, (V{12, 7, 5}));
  EXPECT_FALSE(parse_ranked_ids("[ID12]").fallback);
  // legacy_id_regex: the underscore is required.
  ParseOptions legacy;
  legacy.legacy_id_regex = true;
  EXPECT_EQ(parse_ranked_ids("[ID12, ID_7, ID_ 8, IDX_9]", legacy).ids, (V{7}));
  // Matches do not overlap and are found leftmost first; "ID" inside a word counts (as a regex search).
  EXPECT_EQ(parse_ranked_ids("IDID_4 VALID_5 ID_ID_6").ids, (V{4, 5, 6}));
  // Nothing matches: every maximal digit run (also with the legacy regex on its own).
  const auto f = parse_ranked_ids("1. Heat (1995)\n2. 42\nid 7");
  EXPECT_TRUE(f.fallback);
  EXPECT_EQ(f.ids, (V{1, 1995, 2, 42, 7}));
  EXPECT_EQ(parse_ranked_ids("[ID12, 13]", legacy).ids, (V{12, 13}));
  // legacy_fallback_ml_only: no fallback outside ML.
  ParseOptions games;
  games.legacy_fallback_ml_only = true;
  EXPECT_TRUE(parse_ranked_ids("[12, 13]", games).ids.empty());
  games.dataset_is_ml = true;
  EXPECT_EQ(parse_ranked_ids("[12, 13]", games).ids, (V{12, 13}));
  // No digits at all; a run too long for 64 bits saturates (then validation drops it).
  EXPECT_TRUE(parse_ranked_ids("I cannot rank these.").ids.empty());
  EXPECT_FALSE(parse_ranked_ids("").fallback);
  EXPECT_EQ(parse_ranked_ids("ID_99999999999999999999999").ids, (V{INT64_MAX}));
  EXPECT_EQ(parse_ranked_ids("ID_").ids, (V{}));
}

// ---------------------------------------------------------------- the prompt

std::vector<std::string> tiny_titles(int n) {
  std::vector<std::string> t;
  for (int i = 0; i < n; ++i) t.push_back("Film " + std::to_string(i) + " (19" + std::to_string(50 + i % 50) + ")");
  return t;
}

PromptInput tiny_input(const std::string& id, int32_t target) {
  PromptInput in;
  in.session_id = id;
  in.window = {42, 7, 42, 19, 3};
  for (int32_t c = 50; c < 100; ++c) in.candidates.push_back(c);
  in.target = target;
  return in;
}

TEST(AlkdOracle, PromptHasEveryBlockAndIsDeterministic) {
  const auto titles = tiny_titles(100);
  PromptOptions opt;
  opt.seed = 2024;
  const PromptInput in = tiny_input("17", 60);
  const std::string p = render_prompt(in, titles, opt);
  EXPECT_EQ(p.rfind("You are a recommender system.", 0), 0u) << p;
  for (const auto& h : static_hints(HintSet::ml)) EXPECT_NE(p.find(h), std::string::npos) << h;
  EXPECT_NE(p.find("The user's history holds 4 watched movies: {<ID_42:Film 42 (1992)>, <ID_7:Film 7 (1957)>, "
                   "<ID_19:Film 19 (1969)>, <ID_3:Film 3 (1953)>}"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("from these 50 candidates: {<ID_"), std::string::npos);
  for (int32_t c = 50; c < 100; ++c) EXPECT_NE(p.find(item_token(c, titles)), std::string::npos) << c;
  EXPECT_NE(p.find("Choose exactly 25 of them"), std::string::npos);
  EXPECT_NE(p.find("Write no other text."), std::string::npos);
  // Deterministic per (seed, session); another session or seed shuffles differently; the
  // shuffle is a permutation that hides the teacher's order.
  EXPECT_EQ(render_prompt(in, titles, opt), p);
  EXPECT_NE(render_prompt(tiny_input("18", 60), titles, opt), p);
  PromptOptions other = opt;
  other.seed = 2025;
  EXPECT_NE(render_prompt(in, titles, other), p);
  const auto order = prompt_candidate_order(in.candidates, 2024, "17");
  EXPECT_NE(order, in.candidates);
  EXPECT_EQ(std::set<int32_t>(order.begin(), order.end()), std::set<int32_t>(in.candidates.begin(), in.candidates.end()));
  EXPECT_EQ(prompt_candidate_order(in.candidates, 2024, "17", true), in.candidates);
  // legacy_prompt_order: session items by ascending index.
  EXPECT_EQ(prompt_session_items(in.window, false), (std::vector<int32_t>{42, 7, 19, 3}));
  EXPECT_EQ(prompt_session_items(in.window, true), (std::vector<int32_t>{3, 7, 19, 42}));
  PromptOptions games = opt;
  games.domain_phrase = "bought video games";
  games.hints = static_hints(HintSet::games);
  const std::string g = render_prompt(in, titles, games);
  EXPECT_NE(g.find("holds 4 bought video games: {"), std::string::npos);
  EXPECT_NE(g.find(static_hints(HintSet::games)[0]), std::string::npos);
  EXPECT_EQ(static_hints(HintSet::games).size(), 4u);
  // A title's line breaks never split the token; a missing title is named by the id.
  EXPECT_EQ(item_token(1, {"a", "Two\nLines"}), "<ID_1:Two Lines>");
  EXPECT_EQ(item_token(5, {"a"}), "<ID_5:item 5>");
  // The session's key: its number, or a hash of a non-numeric id.
  EXPECT_EQ(session_key("2604"), 2604u);
  EXPECT_NE(session_key("s2604"), session_key("2604"));
}

// The oracle's options from the alkd.* keys: domain, hints file, candidate order, switches.
TEST(AlkdOracle, OptionsFromTheRunsKeys) {
  AlkdConfig ac;
  OracleOptions oo = oracle_options(ac, 7, 8475);
  EXPECT_EQ(oo.n_items, 8475);
  EXPECT_EQ(oo.prompt.seed, 7u);
  EXPECT_EQ(oo.prompt.hints, static_hints(HintSet::ml));
  EXPECT_FALSE(oo.prompt.teacher_rank_order);
  EXPECT_TRUE(oo.dataset_is_ml);
  const std::string hints = testing::TempDir() + "/recdistill_hints.txt";
  std::ofstream(hints) << "  first hint \r\n\nsecond hint\n";
  ac.hints_file = hints;
  ac.candidate_order = "teacher_rank";
  ac.domain = "games";
  ac.legacy_id_regex = true;
  oo = oracle_options(ac, 7, 10);
  EXPECT_EQ(oo.prompt.hints, (std::vector<std::string>{"first hint", "second hint"}));
  EXPECT_TRUE(oo.prompt.teacher_rank_order);
  EXPECT_EQ(oo.prompt.domain_phrase, "bought video games");
  EXPECT_FALSE(oo.dataset_is_ml);
  EXPECT_TRUE(oo.parse.legacy_id_regex);
  // The file or the LLM's hints, not both.
  ac.hints = "llm_summarised";
  EXPECT_THROW(ac.validate(), Error);
}

// ---------------------------------------------------------------- the oracle

llm::LlmConfig offline_config(const fs::path& dir) {
  llm::LlmConfig c;
  c.base_url = "";
  c.model = "fake-chat";
  c.cache = (dir / "cache.jsonl").string();
  return c;
}

TEST(AlkdOracle, ImportIsIdempotentAndOfflineLookupsSayWhatTheyHave) {
  const auto dir = scratch("offline");
  OracleOptions opt;
  opt.n_items = 8475;
  std::ostringstream warn;
  {
    AlkdOracle oracle(offline_config(dir), opt, {}, &warn);
    EXPECT_FALSE(oracle.live());
    EXPECT_EQ(oracle.import_recorded(shipped()), 4992u);
    EXPECT_EQ(oracle.import_recorded(shipped()), 0u);
  }
  AlkdOracle oracle(offline_config(dir), opt, {}, &warn);
  EXPECT_EQ(oracle.import_recorded(shipped()), 0u);  // a fresh object over the same cache
  EXPECT_EQ(oracle.cache().snapshot().records.size(), 4992u);

  const OracleAnswer a = oracle.lookup("2604");  // target unknown: the recorded position
  EXPECT_EQ(a.state, AnswerState::usable);
  EXPECT_EQ(a.source, AnswerSource::recorded);
  EXPECT_EQ(a.raw_items.size(), 25u);
  EXPECT_EQ(a.validated.items.size(), 25u);
  EXPECT_EQ(a.target_position, 25);
  EXPECT_EQ(a.recorded_target_position, 25);
  const OracleAnswer e = oracle.lookup("1542");
  EXPECT_EQ(e.state, AnswerState::unusable);
  EXPECT_EQ(e.source, AnswerSource::recorded);
  EXPECT_EQ(e.detail, "the recorded list is empty");
  EXPECT_EQ(oracle.lookup("12322").state, AnswerState::missing);  // a test session: never answered
  EXPECT_EQ(oracle.lookup("3296").validated.counts.out_of_range, 1);
  // With the session's target known, the position is recomputed (and agrees).
  PromptInput in = tiny_input("4138", sessions().at("4138").target);
  oracle.add_sessions({in});
  EXPECT_EQ(oracle.lookup("4138").target_position, 0);

  // No endpoint: a query sends nothing, and a session without an answer stays missing.
  oracle.add_sessions({tiny_input("12322", 60)});
  const auto q = oracle.query({"2604", "12322", "99999"});
  EXPECT_EQ(q.had_answer, 1u);
  EXPECT_EQ(q.no_input, 1u);
  EXPECT_EQ(q.missing, 2u);
  EXPECT_TRUE(q.batch.results.empty());
  EXPECT_NE(q.stop.find("no LLM endpoint is configured"), std::string::npos) << q.stop;

  // LLM hit rates of the ALKDRec selection's first 500 (§5.4 reports them per strategy).
  std::vector<OracleAnswer> answers;
  for (const auto& s : selection("alkdrec", 500)) answers.push_back(oracle.lookup(s));
  const HitRates h = llm_hit_rates(answers);
  EXPECT_EQ(h.sessions, 500u);
  std::vector<int> pos;
  for (const auto& s : selection("alkdrec", 500)) pos.push_back(shipped().find(s)->target_position);
  EXPECT_DOUBLE_EQ(h.at25, llm_hit_rates(pos).at25);
  EXPECT_TRUE(warn.str().empty()) << warn.str();
}

// The prompt and role of a chat request body.
std::pair<std::string, std::string> message_of(const std::string& body) {
  simdjson::dom::parser p;
  simdjson::dom::element doc = p.parse(body);
  simdjson::dom::object m = doc["messages"].at(0).get_object();
  return {std::string(std::string_view(m["role"])), std::string(std::string_view(m["content"]))};
}

// The candidate ids of a prompt, in its order.
std::vector<int64_t> candidates_of(const std::string& prompt) {
  const size_t at = prompt.find("candidates: {");
  const size_t end = prompt.find('}', at);
  return parse_ranked_ids(std::string_view(prompt).substr(at, end - at)).ids;
}

TEST(AlkdOracle, LiveQueriesAreCachedParsedAndValidated) {
  const auto dir = scratch("live");
  // Session 1: a clean answer (target 60 third). 2: no ids at all. 3: a non-candidate, an
  // out-of-range id and a repeat, ids without underscore. 4: a malformed reply body.
  test::FakeLlmServer server([](const test::FakeRequest& rq, size_t) {
    const auto [role, prompt] = message_of(rq.body);
    const auto c = candidates_of(prompt);
    std::string content;
    if (prompt.find("<ID_7:Film 7") == std::string::npos) return test::FakeReply{500, "no window"};
    if (role != "user") return test::FakeReply{400, "{\"error\": {\"message\": \"role\"}}"};
    const size_t sess = prompt.find("Film 11 ") != std::string::npos ? 1 : prompt.find("Film 12 ") != std::string::npos ? 2
                        : prompt.find("Film 13 ") != std::string::npos ? 3 : 4;
    if (sess == 4) return test::FakeReply{200, "{\"choices\": ["};
    if (sess == 2) return test::FakeReply{200, test::chat_reply_body("Sorry, I cannot help with that.", 100, 20)};
    if (sess == 1) {
      content = "[ID_61, ID_62, ID_60";
      for (int i = 0; i < 22; ++i) content += ", ID_" + std::to_string(70 + i);
      return test::FakeReply{200, test::chat_reply_body(content + "]", 100, 20)};
    }
    const int64_t first = c[0] == 60 ? c[1] : c[0];  // a candidate other than the target
    content = "[ID" + std::to_string(first) + ", ID5, ID500, ID" + std::to_string(first) + ", ID60]";
    return test::FakeReply{200, test::chat_reply_body(content, 100, 20)};
  });
  llm::LlmConfig cfg = offline_config(dir);
  cfg.base_url = server.base_url();
  cfg.api_key_env = "RECDISTILL_TEST_NO_SUCH_KEY";
  cfg.timeout_s = 5;
  cfg.max_retries = 1;
  cfg.backoff_initial_s = 0.01;
  cfg.backoff_max_s = 0.02;
  cfg.concurrency = 2;
  cfg.price_input_per_mtok = 10;
  cfg.price_output_per_mtok = 30;
  OracleOptions opt;
  opt.n_items = 100;
  opt.prompt.seed = 7;
  std::vector<PromptInput> inputs;
  for (int s = 1; s <= 4; ++s) {
    PromptInput in = tiny_input(std::to_string(s), 60);
    in.window.push_back(10 + s);  // tells the fake server which session this is
    inputs.push_back(in);
  }
  std::ostringstream warn;
  AlkdOracle oracle(cfg, opt, tiny_titles(100), &warn);
  oracle.add_sessions(inputs);
  EXPECT_EQ(oracle.lookup("1").state, AnswerState::missing);
  const auto q = oracle.query({"1", "2", "3", "4"});
  EXPECT_EQ(server.count(), 4u);
  EXPECT_EQ(q.had_answer, 0u);
  EXPECT_EQ(q.usable, 2u);
  EXPECT_EQ(q.unusable, 2u);
  EXPECT_EQ(q.missing, 0u);
  EXPECT_EQ(q.batch.answered, 3);
  EXPECT_EQ(q.batch.unparseable, 1);
  EXPECT_NEAR(q.batch.cost_usd, 3 * (100 * 10 + 20 * 30) / 1e6, 1e-12);
  EXPECT_TRUE(q.stop.empty()) << q.stop;

  const OracleAnswer a1 = oracle.lookup("1");
  EXPECT_EQ(a1.state, AnswerState::usable);
  EXPECT_EQ(a1.source, AnswerSource::live);
  EXPECT_EQ(a1.raw_items.size(), 25u);
  EXPECT_EQ(a1.target_position, 2);
  EXPECT_EQ(a1.validated.counts.non_candidates, 0);
  const OracleAnswer a2 = oracle.lookup("2");
  EXPECT_EQ(a2.state, AnswerState::unusable);
  EXPECT_EQ(a2.detail, "the reply names no item id");
  const OracleAnswer a3 = oracle.lookup("3");
  EXPECT_EQ(a3.state, AnswerState::usable);
  EXPECT_EQ(a3.validated.counts.non_candidates, 1);  // 5
  EXPECT_EQ(a3.validated.counts.out_of_range, 1);    // 500
  EXPECT_EQ(a3.validated.counts.repeats, 1);
  EXPECT_EQ(a3.target_position, 4);
  EXPECT_EQ(a3.validated.items.size(), 3u);
  const OracleAnswer a4 = oracle.lookup("4");
  EXPECT_EQ(a4.state, AnswerState::unusable);
  EXPECT_NE(a4.detail.find("the reply is not valid JSON"), std::string::npos) << a4.detail;

  // Everything was cached: a second query, or a fresh oracle, sends nothing.
  const auto again = oracle.query({"1", "2", "3", "4"});
  EXPECT_EQ(again.had_answer, 4u);
  EXPECT_EQ(server.count(), 4u);
  AlkdOracle offline(offline_config(dir), opt, tiny_titles(100), &warn);
  offline.add_sessions(inputs);
  EXPECT_EQ(offline.lookup("3").validated.items.size(), 3u);
  EXPECT_EQ(offline.lookup("4").state, AnswerState::unusable);
  // restrict_to_candidates drops the non-candidate.
  OracleOptions strict = opt;
  strict.restrict_to_candidates = true;
  AlkdOracle restricted(offline_config(dir), strict, tiny_titles(100), &warn);
  restricted.add_sessions(inputs);
  EXPECT_EQ(restricted.lookup("3").validated.items.size(), 2u);
  // Another prompt (the legacy role) is another request: missing offline.
  OracleOptions legacy = opt;
  legacy.prompt.legacy_assistant_role = true;
  AlkdOracle other(offline_config(dir), legacy, tiny_titles(100), &warn);
  other.add_sessions(inputs);
  EXPECT_EQ(other.lookup("1").state, AnswerState::missing);
  EXPECT_NE(other.request(inputs[0]).body.find("\"role\": \"assistant\""), std::string::npos);
  EXPECT_NE(oracle.request(inputs[0]).body.find("\"role\": \"user\""), std::string::npos);
}

// ---------------------------------------------------------------- the summarised hints (§4.1)

// n prediction records: record i's window {i, i+1, i, i+2} (a repeat), its teacher's top-50
// 200+i .. 249+i, its target 600+i (never in the top-50, so it is forced into the last slot).
std::vector<Prediction> hint_records(int n) {
  std::vector<Prediction> out;
  for (int i = 0; i < n; ++i) {
    Prediction p;
    p.session_id = std::to_string(1000 + i);
    p.window = {i, i + 1, i, i + 2};
    for (int32_t c = 0; c < 50; ++c) p.teacher_top.push_back(200 + i + c);
    p.target = 600 + i;
    out.push_back(p);
  }
  return out;
}

TEST(AlkdHints, SummarisationPromptHoldsTwentyDistinctCasesDrawnBySeed) {
  // The draw: 20 distinct instances, a function of the seed; another seed draws others.
  const auto d = draw_hint_instances(100, 2024);
  ASSERT_EQ(d.size(), 20u);
  EXPECT_EQ(std::set<size_t>(d.begin(), d.end()).size(), 20u);
  for (size_t i : d) EXPECT_LT(i, 100u);
  EXPECT_EQ(draw_hint_instances(100, 2024), d);
  EXPECT_NE(draw_hint_instances(100, 2025), d);
  EXPECT_NE(d, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
  // Fewer instances than cases: each once.
  const auto all = draw_hint_instances(5, 2024);
  EXPECT_EQ(std::set<size_t>(all.begin(), all.end()), (std::set<size_t>{0, 1, 2, 3, 4}));
  // 20 distinct even where a draw with replacement would repeat: 20 of 21.
  const auto near = draw_hint_instances(21, 7);
  EXPECT_EQ(std::set<size_t>(near.begin(), near.end()).size(), 20u);

  // A case: the window's distinct items in order, the teacher's list with the target last.
  const auto recs = hint_records(100);
  const HintCase c = hint_case(recs[3]);
  EXPECT_EQ(c.items, (std::vector<int32_t>{3, 4, 5}));
  ASSERT_EQ(c.candidates.size(), 50u);
  EXPECT_EQ(c.candidates.front(), 203);
  EXPECT_EQ(c.candidates[48], 251);
  EXPECT_EQ(c.candidates.back(), 603);

  const auto titles = tiny_titles(700);
  std::vector<HintCase> cases;
  for (size_t i : d) cases.push_back(hint_case(recs[i]));
  const std::string p = render_hint_prompt(cases, titles);
  EXPECT_EQ(p.rfind("You are an assistant", 0), 0u) << p;
  EXPECT_NE(p.find("strictly"), std::string::npos);
  EXPECT_NE(p.find("the earlier an item stands in it, the stronger the user's intent"), std::string::npos) << p;
  EXPECT_EQ(p.find("top-20"), std::string::npos);
  EXPECT_NE(p.find("There are 20 cases, one per line:\n"), std::string::npos) << p;
  for (size_t k = 0; k < d.size(); ++k) {
    const Prediction& r = recs[d[k]];
    const int i = std::stoi(r.session_id) - 1000;
    std::vector<int32_t> cands(r.teacher_top.begin(), r.teacher_top.end() - 1);
    cands.push_back(r.target);
    const std::string line = "Case " + std::to_string(k + 1) + ": the user's items " +
                             item_tokens({i, i + 1, i + 2}, titles) + "; the recommender's top-50 " +
                             item_tokens(cands, titles) + "\n";
    EXPECT_NE(p.find(line), std::string::npos) << line;
  }
  EXPECT_EQ(p.find("Case 21:"), std::string::npos);
  // Items as the recommendation prompt lists them.
  EXPECT_NE(p.find(item_token(recs[d[0]].window[0], titles)), std::string::npos);
  EXPECT_NE(p.find("<ID_" + std::to_string(recs[d[0]].target) + ":Film "), std::string::npos);
  const size_t task = p.find("Do not analyse the cases or their items one by one.");
  ASSERT_NE(task, std::string::npos);
  EXPECT_GT(task, p.find("Case 20:"));
  EXPECT_NE(p.find("Generalise only from these cases", task), std::string::npos);
  EXPECT_NE(p.find("another edition of an item they already own, so the recommender does not enforce diversity", task),
            std::string::npos);
  // Another seed, another prompt; the same seed, the same prompt (and cache key).
  std::vector<HintCase> other;
  for (size_t i : draw_hint_instances(100, 2025)) other.push_back(hint_case(recs[i]));
  EXPECT_NE(render_hint_prompt(other, titles), p);
  EXPECT_EQ(render_hint_prompt(cases, titles), p);
  EXPECT_THROW(render_hint_prompt({}, titles), Error);
}

TEST(AlkdHints, ReplySplitsIntoOneHintPerLine) {
  const std::string reply =
      "Patterns:\r\n1. Sequels follow the first film.\n 2) Genres stay.\n- Shared cast matters \n* Editions repeat\n\n"
      "   \n10. Era matters.\n1.5 stars is a rating, not a marker\n*Bold* stays\n-\n";
  EXPECT_EQ(split_hints(reply, "r"),
            (std::vector<std::string>{"Patterns:", "Sequels follow the first film.", "Genres stay.", "Shared cast matters",
                                      "Editions repeat", "Era matters.", "1.5 stars is a rating, not a marker",
                                      "*Bold* stays"}));
  EXPECT_EQ(split_hints("one hint, no newline", "r"), (std::vector<std::string>{"one hint, no newline"}));
  for (const std::string empty : {"", "\n \n\t\r\n", "1.\n- \n*"}) {
    try {
      split_hints(empty, "cache.jsonl:7");
      ADD_FAILURE() << "no error for '" << empty << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cache.jsonl:7: the LLM's reply to the hint prompt holds no hint"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(AlkdHints, OneLiveCallThenTheCache) {
  const auto dir = scratch("hints");
  test::FakeLlmServer server([](const test::FakeRequest& rq, size_t) {
    const auto [role, prompt] = message_of(rq.body);
    if (role != "user" || prompt.find("There are 3 cases") == std::string::npos) return test::FakeReply{400, "{}"};
    return test::FakeReply{200, test::chat_reply_body("1. Sequels follow.\n2. Genres stay.\n", 300, 12)};
  });
  llm::LlmConfig cfg = offline_config(dir);
  cfg.base_url = server.base_url();
  cfg.api_key_env = "RECDISTILL_TEST_NO_SUCH_KEY";
  cfg.timeout_s = 5;
  cfg.max_retries = 0;
  const auto recs = hint_records(3);
  std::vector<HintCase> cases;
  for (size_t i : draw_hint_instances(recs.size(), 11)) cases.push_back(hint_case(recs[i]));
  const std::string prompt = render_hint_prompt(cases, tiny_titles(700));
  const std::vector<std::string> want = {"Sequels follow.", "Genres stay."};
  {
    llm::AnswerCache cache(cfg.cache);
    const SummarisedHints h = llm_summarised_hints(cfg, cache, prompt);
    EXPECT_EQ(h.hints, want);
    EXPECT_TRUE(h.sent);
    EXPECT_EQ(h.batch.answered, 1);
    EXPECT_EQ(server.count(), 1u);
    const auto sent = server.requests().at(0);
    EXPECT_EQ(sent.path, "/v1/chat/completions");
    EXPECT_EQ(message_of(sent.body).second, prompt);
  }
  // A fresh cache object (a rerun): the cached reply, nothing sent.
  {
    llm::AnswerCache cache(cfg.cache);
    const SummarisedHints h = llm_summarised_hints(cfg, cache, prompt);
    EXPECT_EQ(h.hints, want);
    EXPECT_FALSE(h.sent);
    EXPECT_NE(h.where.find("hints/alkd-hints-v1/fake-chat/sha256:"), std::string::npos) << h.where;
  }
  // Without an endpoint: the cached reply still serves; another prompt has none, and says so.
  llm::AnswerCache cache(cfg.cache);
  EXPECT_EQ(llm_summarised_hints(offline_config(dir), cache, prompt).hints, want);
  try {
    llm_summarised_hints(offline_config(dir), cache, prompt + " ");
    ADD_FAILURE() << "no error without an endpoint or a cached reply";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no endpoint is configured (llm.base_url is empty)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(server.count(), 1u);
  // The hints go into the recommendation prompt.
  PromptOptions po;
  po.hints = want;
  EXPECT_NE(render_prompt(tiny_input("1", 60), tiny_titles(100), po).find("1. Sequels follow.\n2. Genres stay.\n"),
            std::string::npos);

  // An oracle that cannot render prompts still serves recorded answers; a session without one is
  // missing (no cached live reply can exist without its prompt), and rendering its prompt (to
  // send it) names why it refuses.
  OracleOptions opt;
  opt.n_items = 8475;
  opt.no_prompts = "alkd.hints: llm_summarised needs the LLM's hints";
  std::ostringstream warn;
  AlkdOracle oracle(offline_config(scratch("no_prompts")), opt, {}, &warn);
  oracle.import_recorded(shipped());
  oracle.add_sessions({tiny_input("2604", 60), tiny_input("12322", 60)});
  EXPECT_EQ(oracle.lookup("2604").state, AnswerState::usable);
  EXPECT_EQ(oracle.lookup("12322").state, AnswerState::missing);
  try {
    oracle.prompt(*oracle.input_of("12322"));
    ADD_FAILURE() << "a prompt was rendered";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("session 12322 has no recorded answer and needs a prompt: alkd.hints"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace recdistill
