// recdistill/methods/alkd_oracle.hpp: the LLM oracle of active LLM distillation
// (specs/active-llm-distillation.md §4; docs/alkd.md): the static and the LLM-summarised hints,
// the recommendation prompt, and the oracle that answers a session from recorded answers, from
// the answer cache, or (when an endpoint is configured) by asking the LLM.
//
//   auto h = llm_summarised_hints(cfg.llm, cache, render_hint_prompt(cases, titles));  // §4.1, cached
//   opt.prompt.hints = h.hints;                         // else static_hints(HintSet::ml)
//   AlkdOracle oracle(cfg.llm, opt, titles);            // opens llm.cache
//   oracle.import_recorded(read_answer_file(path));     // idempotent: "session:<id>" records
//   oracle.add_sessions(inputs);                        // window, candidates, target per session
//   OracleQueryReport q = oracle.query(selected);       // only with llm.base_url; else counts misses
//   OracleAnswer a = oracle.lookup("2604");             // usable / unusable / missing
//
// Everything runs offline on recorded answers: with llm.base_url "" no request is ever sent and
// a session without an answer is `missing`. Live requests go through llm::Client's batch
// (bounded concurrency, retries, budgets, claims), so no answer is paid for twice; a completed
// reply is cached even when it cannot be used.
//
// Cache keys (llm/cache.hpp): recorded answers are (purpose "rank", template
// "alkdrec-ml-recorded", model "gpt-4-turbo-2024-04-09", "session:<id>"), the same key that
// `recdistill llm import` writes; live answers are ("rank", kRankTemplate, llm.model,
// "sha256:<request body>"), so a changed prompt, model or switch is a new request; the hint
// reply is ("hints", kHintsTemplate, llm.model, "sha256:<request body>").
#pragma once
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/llm/cache.hpp"
#include "recdistill/llm/client.hpp"
#include "recdistill/llm/config.hpp"
#include "recdistill/llm/protocol.hpp"
#include "recdistill/methods/alkd_answer_state.hpp"
#include "recdistill/methods/alkd_answers.hpp"
#include "recdistill/methods/alkd_config.hpp"
#include "recdistill/methods/alkd_predictions.hpp"

namespace recdistill::alkd {

// Bump whenever the prompt's wording changes (the cache key names it).
inline constexpr const char* kRankPurpose = "rank";
inline constexpr const char* kRankTemplate = "alkd-rank-v1";
inline constexpr const char* kRecordedTemplate = "alkdrec-ml-recorded";
inline constexpr const char* kRecordedModel = "gpt-4-turbo-2024-04-09";

// ---- hints (§4.1, `static_hints`) ----
//
// The repository has no run-time resource folder for a header-only library, so the static
// hints live here as a table (our own wording of upstream's four themes per dataset);
// load_hints_file reads replacements, one hint per line.

enum class HintSet { ml, games };

inline const std::vector<std::string>& static_hints(HintSet set) {
  // ML: sequels and franchises; genre affinity; shared cast, crew, era or studio; another edition.
  static const std::vector<std::string> ml = {
      "Viewers who have seen one film of a series or franchise often go on to its sequels, prequels and spin-offs.",
      "Most viewers return to the genres that dominate their recent history.",
      "Films that share actors, a director, a studio or a period with the ones already watched are likely choices.",
      "Variety is not required: a viewer may want another version of a title already seen, such as a remake, "
      "a re-release or a different cut."};
  // Games: platform and accessories; series and genre loyalty; special editions and bundles; another edition.
  static const std::vector<std::string> games = {
      "Buyers pick games and accessories that work with the consoles and devices they already own.",
      "Players stay loyal to the series and genres they have been buying.",
      "Special, collector's and complete editions, and bundles, appeal to fans of the underlying game.",
      "Variety is not required: a buyer may want another edition of a game already owned."};
  return set == HintSet::ml ? ml : games;
}

// A hint line without its surrounding spaces, tabs and CR.
inline std::string_view trim_hint_line(std::string_view v) {
  const size_t b = v.find_first_not_of(" \t\r"), e = v.find_last_not_of(" \t\r");
  return b == std::string_view::npos ? std::string_view() : v.substr(b, e - b + 1);
}

// One hint per non-empty line (a line's surrounding spaces and a CR are dropped).
inline std::vector<std::string> load_hints_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the hints file");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line))
    if (const std::string_view h = trim_hint_line(line); !h.empty()) out.emplace_back(h);
  if (out.empty()) fail(path, ": the hints file holds no hint (expected one hint per line)");
  return out;
}

// ---- the prompt (§4.2) ----

// What a session's prompt and validation need (from the prediction step, §3).
struct PromptInput {
  std::string session_id;
  std::vector<int32_t> window;      // the input window, oldest first, duplicates kept
  std::vector<int32_t> candidates;  // the prompt's candidates (teacher top-50, target forced)
  int32_t target = -1;
};

struct PromptOptions {
  std::string domain_phrase = "watched movies";  // "bought video games" for Games
  std::vector<std::string> hints = static_hints(HintSet::ml);
  uint64_t seed = 0;                   // the candidate shuffle's seed
  bool legacy_prompt_order = false;    // session items in ascending index instead of chronological
  bool legacy_assistant_role = false;  // send the prompt as an assistant message (upstream)
  bool teacher_rank_order = false;     // candidates in teacher-rank order (flagged: a forced target sits last)
};

// The session's items as listed: distinct, in order of first appearance (chronological), or in
// ascending index with legacy_prompt_order.
inline std::vector<int32_t> prompt_session_items(const std::vector<int32_t>& window, bool legacy_prompt_order) {
  std::vector<int32_t> out;
  std::unordered_set<int32_t> seen;
  for (int32_t v : window)
    if (seen.insert(v).second) out.push_back(v);
  if (legacy_prompt_order) std::sort(out.begin(), out.end());
  return out;
}

// The counter word that tags the candidate shuffle: Stream::shuffling with this value as the
// counter's epoch word, which training shuffles (epochs counted from 0) and data/split.hpp
// (0xFFFFFFFF) never use. The session's 64-bit key fills the step and slot words.
inline constexpr uint32_t kPromptShuffleTag = 0xA1CD0F50u;

// A session id as 64 bits: its value when it is a decimal number below 2^64, else FNV-1a of its text.
inline uint64_t session_key(std::string_view id) {
  bool digits = !id.empty() && id.size() <= 19;
  uint64_t v = 0;
  for (char c : id) {
    if (c < '0' || c > '9') digits = false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (digits) return v;
  uint64_t h = 1469598103934665603ull;
  for (char c : id) h = (h ^ uint64_t(static_cast<unsigned char>(c))) * 1099511628211ull;
  return h;
}

// The candidates in the prompt's order: a Fisher-Yates shuffle keyed by (seed, session id), so
// the teacher's ranking (and a forced target's last slot) is not shown; or teacher order.
inline std::vector<int32_t> prompt_candidate_order(std::vector<int32_t> candidates, uint64_t seed, std::string_view session_id,
                                                   bool teacher_rank_order = false) {
  if (teacher_rank_order) return candidates;
  const uint64_t k = session_key(session_id);
  for (size_t i = candidates.size(); i > 1; --i) {
    const auto r = bits4(seed, Stream::shuffling, kPromptShuffleTag, uint32_t(k), uint32_t(i - 1), uint32_t(k >> 32));
    const uint64_t wide = (uint64_t(r[0]) << 32) | r[1];
    std::swap(candidates[i - 1], candidates[size_t(wide % i)]);
  }
  return candidates;
}

// "<ID_12:Toy Story (1995)>": a title on one line (control characters become spaces).
inline std::string item_token(int32_t item, const std::vector<std::string>& titles) {
  std::string t = item >= 0 && size_t(item) < titles.size() ? titles[size_t(item)] : std::string();
  for (char& c : t)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  if (t.empty()) t = cat("item ", item);
  return cat("<ID_", item, ":", t, ">");
}

// "{<ID_42:...>, <ID_7:...>}": items as the prompts list them (both prompts share it).
inline std::string item_tokens(const std::vector<int32_t>& items, const std::vector<std::string>& titles) {
  std::string s = "{";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + item_token(items[i], titles);
  return s + "}";
}

// The recommendation prompt (§4.2), in our own words, blocks separated by blank lines: role,
// hints, behaviour, candidates, task, output format. `titles` is indexed by item index.
inline std::string render_prompt(const PromptInput& in, const std::vector<std::string>& titles, const PromptOptions& opt) {
  const auto tokens = [&](const std::vector<int32_t>& items) { return item_tokens(items, titles); };
  const auto session = prompt_session_items(in.window, opt.legacy_prompt_order);
  const auto cands = prompt_candidate_order(in.candidates, opt.seed, in.session_id, opt.teacher_rank_order);
  std::string p =
      "You are a recommender system. Your job is to recommend items that fit a user as closely as possible, "
      "judging only from what the user has done so far.\n\n";
  if (!opt.hints.empty()) {
    p += "Keep in mind what is known about how users like this one choose:\n";
    for (size_t i = 0; i < opt.hints.size(); ++i) p += cat(i + 1, ". ", opt.hints[i], "\n");
    p += "\n";
  }
  p += cat("The user's history holds ", session.size(), " ", opt.domain_phrase, ": ", tokens(session), "\n\n");
  p += cat("Rank items for this user from these ", cands.size(), " candidates: ", tokens(cands), "\n\n");
  p += cat("Look at every candidate before deciding. Choose exactly ", kAnswerLength,
           " of them and order them from the best recommendation to the least good one.\n\n");
  p += "Reply with nothing but the list: the chosen items' ID tokens, separated by commas, in square brackets, "
       "like [ID_17, ID_4, ID_230]. Write no other text.";
  return p;
}

// ---- hints summarised by the LLM (§4.1, `llm_summarised_hints`) ----
//
// One request, in our own words: a few training instances (what the user did, what the teacher
// ranked) and a request to generalise them into hints, one per line. It is an ordinary live
// request: cached under ("hints", kHintsTemplate, llm.model, "sha256:<request body>"), so the
// same seed, predictions, titles and model never pay for it twice, and a run without an
// endpoint finds it in the cache.

// Bump whenever the summarisation prompt's wording changes (the cache key names it).
inline constexpr const char* kHintsPurpose = "hints";
inline constexpr const char* kHintsTemplate = "alkd-hints-v1";
inline constexpr size_t kHintCases = 20;  // upstream shows 20 cases (drawn with replacement)

// The counter word that tags the draw of the cases: Stream::sampling with this value as the
// epoch word, which training's sampling (epochs counted from 0) never reaches.
inline constexpr uint32_t kHintDrawTag = 0xA1CD4175u;

// One case of the summarisation prompt.
struct HintCase {
  std::vector<int32_t> items;       // the window's distinct items, oldest first
  std::vector<int32_t> candidates;  // the teacher's top list in rank order, the target in the last slot when absent
};

inline HintCase hint_case(const Prediction& p) {
  return {prompt_session_items(p.window, false), prompt_candidates(p.teacher_top, p.target)};
}

// Which min(k, n) of n training instances the prompt shows: distinct (upstream draws with
// replacement), by a partial Fisher-Yates shuffle keyed by the seed alone, in draw order.
inline std::vector<size_t> draw_hint_instances(size_t n, uint64_t seed, size_t k = kHintCases) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  k = std::min(k, n);
  for (size_t i = 0; i < k; ++i) {
    const auto r = bits4(seed, Stream::sampling, kHintDrawTag, uint32_t(i), 0, 0);
    const uint64_t wide = (uint64_t(r[0]) << 32) | r[1];
    std::swap(idx[i], idx[i + size_t(wide % (n - i))]);
  }
  idx.resize(k);
  return idx;
}

// The summarisation prompt (§4.1): role, what the list order means, the cases one per line,
// then the task (no item-by-item analysis, generalise from these cases only, one example).
inline std::string render_hint_prompt(const std::vector<HintCase>& cases, const std::vector<std::string>& titles) {
  if (cases.empty()) fail("the hint summarisation prompt needs at least one case (found none)");
  size_t k = 0;  // the lists' length, named as it is ("top-50" for the default alkd.top_k)
  for (const auto& c : cases) k = std::max(k, c.candidates.size());
  std::string p =
      "You are an assistant to the people who run a recommender system. Your only task is to summarise, strictly "
      "from the evidence below, how this recommender turns what a user has done into what it recommends.\n\n";
  p += cat("Each case gives a user's items, oldest first, and the recommender's top-", k,
           " list for that user. The list is ranked: the earlier an item stands in it, the stronger the user's intent "
           "towards that item as the recommender judges it.\n\n");
  p += cat("There are ", cases.size(), " cases, one per line:\n");
  for (size_t i = 0; i < cases.size(); ++i)
    p += cat("Case ", i + 1, ": the user's items ", item_tokens(cases[i].items, titles), "; the recommender's top-", k,
             " ", item_tokens(cases[i].candidates, titles), "\n");
  p += "\nDo not analyse the cases or their items one by one. Generalise only from these cases: write the patterns "
       "that explain how the recommender gets from a user's items to its list, one pattern per line. For example, a "
       "user may want another edition of an item they already own, so the recommender does not enforce diversity.";
  return p;
}

// The hints of a reply: one per non-empty line, a leading list marker ("1.", "2)", "-", "*")
// and the line's surrounding spaces dropped. `where` names the reply in the error.
inline std::vector<std::string> split_hints(std::string_view reply, const std::string& where) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= reply.size()) {
    const size_t nl = std::min(reply.find('\n', at), reply.size());
    std::string_view line = reply.substr(at, nl - at);
    at = nl + 1;
    line = trim_hint_line(line);
    // A marker counts only when a space (or nothing) follows it: "1.5 stars" and "*Title*" stay.
    size_t m = 0;
    while (m < line.size() && line[m] >= '0' && line[m] <= '9') ++m;
    if (m > 0 && m < line.size() && (line[m] == '.' || line[m] == ')')) ++m;
    else if (m == 0 && !line.empty() && (line[0] == '-' || line[0] == '*')) m = 1;
    else m = 0;
    if (m > 0 && (m == line.size() || line[m] == ' ' || line[m] == '\t')) line = trim_hint_line(line.substr(m));
    if (!line.empty()) out.emplace_back(line);
  }
  if (out.empty()) fail(where, ": the LLM's reply to the hint prompt holds no hint (expected one hint per line)");
  return out;
}

// The request of the summarisation prompt (sent as the user; its body's hash keys the cache).
inline llm::Request hint_request(const llm::LlmConfig& cfg, const std::string& prompt) {
  return llm::chat_request(cfg, kHintsPurpose, kHintsTemplate, {{"user", prompt}});
}

struct SummarisedHints {
  std::vector<std::string> hints;
  bool sent = false;        // false: the reply came from the cache
  std::string where;        // the cache record: "<cache>:<line> (<key>)"
  llm::BatchReport batch;   // the call (empty when the cache answered)
};

// `llm_summarised_hints` (§4.1): the reply to `prompt` from the cache, else from one call of the
// live client (cached before it returns), split into hints. Without an endpoint the reply must be
// in the cache.
inline SummarisedHints llm_summarised_hints(const llm::LlmConfig& cfg, llm::AnswerCache& cache, const std::string& prompt) {
  SummarisedHints out;
  const llm::Request req = hint_request(cfg, prompt);
  std::optional<llm::CacheRecord> rec = cache.find(req.key);
  if (!rec) {
    if (!cfg.live())
      fail("the summarised hints: no endpoint is configured (llm.base_url is empty) and ", cache.path(),
           " holds no reply to this hint prompt (", req.key.text(), ")");
    llm::Client client(cfg);
    out.batch = client.run({req}, &cache);
    const llm::Result& r = out.batch.results.at(0);
    if (r.status != llm::Status::answered && r.status != llm::Status::cached && r.status != llm::Status::unparseable)
      fail("the summarised hints: the LLM did not answer the hint prompt: ",
           !out.batch.stop.empty() ? out.batch.stop : !r.error.empty() ? r.error : std::string(llm::status_name(r.status)));
    out.sent = r.status != llm::Status::cached;
    rec = cache.find(req.key);  // the record as written, with its line
    if (!rec) fail(cache.path(), ": the reply to the hint prompt was not cached (", req.key.text(), ")");
  }
  out.where = cat(cache.path(), ":", rec->line, " (", req.key.text(), ")");
  if (rec->status == "unparseable") fail(out.where, ": the reply to the hint prompt is unparseable: ", rec->error);
  const auto reply = llm::parse_chat_reply(rec->response);
  if (const auto* e = std::get_if<llm::ReplyError>(&reply)) fail(out.where, ": the reply to the hint prompt: ", e->what);
  out.hints = split_hints(std::get<llm::ChatReply>(reply).content, out.where);
  return out;
}

// ---- the oracle (§4.3) ----

enum class AnswerSource { none, recorded, live };

inline const char* state_name(AnswerState s) {
  return s == AnswerState::usable ? "usable" : s == AnswerState::unusable ? "unusable" : "missing";
}
inline const char* source_name(AnswerSource s) {
  return s == AnswerSource::recorded ? "recorded" : s == AnswerSource::live ? "live" : "none";
}

struct OracleAnswer {
  std::string session_id;
  AnswerState state = AnswerState::missing;
  AnswerSource source = AnswerSource::none;
  std::vector<int64_t> raw_items;         // the raw parsed list
  ValidatedAnswer validated;
  int target_position = kAnswerLength;    // recomputed when the target is known, else the recorded one
  int recorded_target_position = -1;      // recorded answers: the file's value
  bool parse_fallback = false;            // live: the ids came from the digit-run fallback
  std::string detail;                     // unusable: why
};

// LLM hit rates of the answered sessions (missing ones are left out; unusable ones miss).
inline HitRates llm_hit_rates(const std::vector<OracleAnswer>& answers) {
  std::vector<int> pos;
  for (const auto& a : answers)
    if (a.state != AnswerState::missing) pos.push_back(a.target_position);
  return llm_hit_rates(pos);
}

struct OracleOptions {
  int64_t n_items = 0;                 // item ids must lie in [0, n)
  bool dataset_is_ml = true;           // legacy_fallback_ml_only's condition
  PromptOptions prompt;
  ParseOptions parse;                  // dataset_is_ml is taken from above
  bool restrict_to_candidates = false; // drop a live answer's non-candidates (default: count them)
  std::string purpose = kRankPurpose;
  std::string recorded_template = kRecordedTemplate;
  std::string recorded_model = kRecordedModel;
  std::string live_template = kRankTemplate;
  // Non-empty: why no prompt can be rendered (alkd.hints: llm_summarised without its hints).
  // Only a session without a recorded answer needs a prompt, so recorded answers still serve.
  std::string no_prompts;
};

// The oracle's options from a run's alkd.* keys (the prompt's domain, hints, candidate order and
// the release's switches), with the run's seed and the number of items.
inline OracleOptions oracle_options(const AlkdConfig& ac, uint64_t seed, int64_t n_items) {
  OracleOptions oo;
  oo.n_items = n_items;
  oo.prompt.seed = seed;
  oo.restrict_to_candidates = ac.restrict_to_candidates;
  oo.dataset_is_ml = ac.domain == "ml";
  oo.prompt.domain_phrase = ac.domain == "ml" ? "watched movies" : "bought video games";
  oo.prompt.hints = ac.hints_file.empty() ? static_hints(ac.domain == "ml" ? HintSet::ml : HintSet::games)
                                          : load_hints_file(ac.hints_file);
  oo.prompt.teacher_rank_order = ac.candidate_order == "teacher_rank";
  oo.prompt.legacy_prompt_order = ac.legacy_prompt_order;
  oo.prompt.legacy_assistant_role = ac.legacy_assistant_role;
  oo.parse.legacy_id_regex = ac.legacy_id_regex;
  oo.parse.legacy_fallback_ml_only = ac.legacy_fallback_ml_only;
  return oo;
}

struct OracleQueryReport {
  size_t requested = 0;       // sessions asked for
  size_t had_answer = 0;      // already answered (recorded or cached) before the batch
  size_t no_input = 0;        // no PromptInput (add_sessions): cannot be asked
  size_t missing = 0;         // still without an answer afterwards (no endpoint, failures, budget)
  size_t usable = 0, unusable = 0;  // the asked sessions' answers afterwards
  llm::BatchReport batch;     // the live batch (empty when nothing was sent)
  std::string stop;           // why the batch ended early ("" = it did not)

  std::string summary() const {
    return cat(requested, " sessions: ", had_answer, " answered before, ", usable, " usable, ", unusable, " unusable, ",
               missing, " missing", no_input ? cat(" (", no_input, " without a prompt input)") : std::string(),
               batch.results.empty() ? std::string() : "; live: " + batch.summary());
  }
};

class AlkdOracle {
 public:
  // Opens the answer cache llm.cache. `titles` (by item index) are needed only for prompts.
  AlkdOracle(llm::LlmConfig llm_cfg, OracleOptions opt, std::vector<std::string> titles = {},
             std::ostream* warn = &std::cerr)
      : cfg_(std::move(llm_cfg)), opt_(std::move(opt)), titles_(std::move(titles)),
        cache_(std::make_unique<llm::AnswerCache>(cfg_.cache, warn)) {
    if (opt_.n_items <= 0) fail("the LLM oracle needs the number of items (found ", opt_.n_items, ")");
    opt_.parse.dataset_is_ml = opt_.dataset_is_ml;
  }

  bool live() const { return cfg_.live(); }
  llm::AnswerCache& cache() { return *cache_; }
  const OracleOptions& options() const { return opt_; }

  // Adds the recorded answers to the cache as `recorded` records keyed "session:<id>" (the
  // first of each session); records already there are not added again. Returns how many were new.
  size_t import_recorded(const RecordedAnswers& a) {
    std::vector<llm::CacheRecord> recs;
    recs.reserve(a.records.size());
    for (const auto& r : a.records) {
      llm::CacheRecord c;
      c.key = recorded_key(r.session_id);
      c.status = "recorded";
      c.response = r.json;
      c.source = cat(a.path, ":", r.line);
      recs.push_back(std::move(c));
    }
    return cache_->add_recorded(recs);
  }

  // What the prompts and validation of these sessions need (a later input replaces an earlier one).
  void add_sessions(const std::vector<PromptInput>& inputs) {
    for (const auto& in : inputs) inputs_[in.session_id] = in;
  }

  const PromptInput* input_of(const std::string& session_id) const {
    const auto it = inputs_.find(session_id);
    return it == inputs_.end() ? nullptr : &it->second;
  }

  std::string prompt(const PromptInput& in) const {
    if (!opt_.no_prompts.empty()) fail("session ", in.session_id, " has no recorded answer and needs a prompt: ", opt_.no_prompts);
    return render_prompt(in, titles_, opt_.prompt);
  }

  // The live request of a session (its body is the cache key's hash).
  llm::Request request(const PromptInput& in) const {
    const std::string role = opt_.prompt.legacy_assistant_role ? "assistant" : "user";
    return llm::chat_request(cfg_, opt_.purpose, opt_.live_template, {{role, prompt(in)}});
  }

  // The session's answer: a recorded one first, then a cached live one (needs its PromptInput),
  // else missing. Never sends anything.
  OracleAnswer lookup(const std::string& session_id) {
    OracleAnswer a;
    a.session_id = session_id;
    const PromptInput* in = input_of(session_id);
    const int64_t target = in ? in->target : -1;
    if (auto rec = cache_->find(recorded_key(session_id))) {
      const RecordedAnswer r = parse_answer_object(rec->response, cat(cache_->path(), ":", rec->line, " (recorded answer)"));
      if (r.session_id != session_id)
        fail(cache_->path(), ":", rec->line, ": the recorded answer under session:", session_id, " is for session ",
             r.session_id);
      a.source = AnswerSource::recorded;
      a.raw_items = r.ranked_items;
      a.recorded_target_position = r.target_position;
      // Recorded answers came from upstream's candidates, not ours: non-candidates are not checkable.
      a.validated = validate_answer(a.raw_items, opt_.n_items, target);
      a.target_position = target >= 0 ? a.validated.target_position : r.target_position;
      finish(a, a.raw_items.empty() ? "the recorded list is empty" : "no recorded id is usable");
      return a;
    }
    // Without its hints (no_prompts) no prompt exists, so no cached live reply can: missing.
    if (!in || !opt_.no_prompts.empty()) return a;
    if (auto rec = cache_->find(request(*in).key)) from_reply(a, *rec, *in);
    return a;
  }

  // Asks the LLM for the sessions without an answer (needs llm.base_url; without it nothing is
  // sent and they stay missing). Everything sent is cached; the report counts the outcome.
  OracleQueryReport query(const std::vector<std::string>& session_ids, const llm::BatchOptions& bo = {}) {
    OracleQueryReport rep;
    rep.requested = session_ids.size();
    std::vector<llm::Request> reqs;
    std::vector<std::string> asked;
    for (const auto& id : session_ids) {
      if (lookup(id).state != AnswerState::missing) {
        ++rep.had_answer;
        continue;
      }
      const PromptInput* in = input_of(id);
      if (!in) {
        ++rep.no_input;
        continue;
      }
      reqs.push_back(request(*in));
      asked.push_back(id);
    }
    if (!reqs.empty() && live()) {
      llm::Client client(cfg_);
      rep.batch = client.run(reqs, cache_.get(), bo);
      rep.stop = rep.batch.stop;
    } else if (!reqs.empty()) {
      rep.stop = cat("no LLM endpoint is configured (llm.base_url is empty): ", reqs.size(),
                     " sessions have no recorded or cached answer");
    }
    for (const auto& id : session_ids) {
      const OracleAnswer a = lookup(id);
      rep.usable += a.state == AnswerState::usable;
      rep.unusable += a.state == AnswerState::unusable;
      rep.missing += a.state == AnswerState::missing;
    }
    return rep;
  }

 private:
  llm::CacheKey recorded_key(const std::string& session_id) const {
    return llm::CacheKey{opt_.purpose, opt_.recorded_template, opt_.recorded_model, "session:" + session_id};
  }

  void finish(OracleAnswer& a, const char* why_unusable) const {
    a.state = a.validated.usable ? AnswerState::usable : AnswerState::unusable;
    if (!a.validated.usable && a.detail.empty()) a.detail = why_unusable;
  }

  // A cached live reply: the chat content parsed (§4.4) and validated against the candidates.
  void from_reply(OracleAnswer& a, const llm::CacheRecord& rec, const PromptInput& in) const {
    a.source = AnswerSource::live;
    if (rec.status == "unparseable") {
      a.state = AnswerState::unusable;
      a.detail = rec.error.empty() ? "an unparseable reply" : rec.error;
      a.validated.counts.unusable = 1;
      return;
    }
    const auto reply = llm::parse_chat_reply(rec.response);
    if (const auto* e = std::get_if<llm::ReplyError>(&reply)) {
      a.state = AnswerState::unusable;
      a.detail = e->what;
      a.validated.counts.unusable = 1;
      return;
    }
    const ParsedIds ids = parse_ranked_ids(std::get<llm::ChatReply>(reply).content, opt_.parse);
    a.raw_items = ids.ids;
    a.parse_fallback = ids.fallback;
    ValidateOptions vo;
    vo.candidates = &in.candidates;
    vo.restrict_to_candidates = opt_.restrict_to_candidates;
    a.validated = validate_answer(a.raw_items, opt_.n_items, in.target, vo);
    a.target_position = a.validated.target_position;
    finish(a, a.raw_items.empty() ? "the reply names no item id" : "no id of the reply is usable");
  }

  llm::LlmConfig cfg_;
  OracleOptions opt_;
  std::vector<std::string> titles_;
  std::unique_ptr<llm::AnswerCache> cache_;
  std::unordered_map<std::string, PromptInput> inputs_;
};

}  // namespace recdistill::alkd
