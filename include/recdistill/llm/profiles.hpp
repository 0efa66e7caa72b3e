// recdistill/llm/profiles.hpp: LLM-written user profiles (specs/profile-distillation.md §15;
// docs/llm.md, "LLM profiles"): the prompts, the plan that splits long histories, the two rounds
// of chat requests, and the output files.
//
//   ProfileJob job{cfg.llm.profile_max_items};
//   ProfileTexts t = write_profiles(client, &cache, dataset, split, job);   // chat requests
//   if (!t.stop.empty()) fail(t.stop);
//   auto vectors = embed(client, &cache, kProfileEmbeddingPurpose, kProfileTemplate, t.texts);
//   io::write_file_atomic(prefix + ".json", profile_json(user_tokens(dataset, t.users), vectors));
//
// A prompt sees only the user's TRAINING sequence of the split in use (never a validation or
// test item), with each item's title, year and genres from the item metadata and the user's
// rating where the data has one. A history longer than `max_items` is halved recursively until
// every part fits; each part is profiled on its own, then one more request merges the partial
// profiles, oldest part first (upstream's `agg_after`). The wording is ours (upstream's "short"
// prompt asks for the same three sections: preferences with percentages, behavioural insights,
// engagement trends). Each template has an id with a version in the cache key: changing the
// wording means a new id, so a stale answer is never reused.
#pragma once
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/io/log.hpp"
#include "recdistill/llm/client.hpp"

namespace recdistill::llm {

// Cache key fields. Bump the version of a template whenever its text changes.
inline constexpr const char* kProfilePurpose = "profile";
inline constexpr const char* kProfileTemplate = "profile-short-v1";
inline constexpr const char* kProfileMergeTemplate = "profile-merge-v1";
inline constexpr const char* kProfileEmbeddingPurpose = "profile-embedding";

// One item of a user's training history: the internal item id and the rating (NaN = none).
struct HistoryEntry {
  int32_t item = 0;
  float rating = std::numeric_limits<float>::quiet_NaN();
};

// The training sequence of every user (indexed by internal user id) with the ratings of those
// interactions. Every split's training sequence is a subsequence of the user's rows in time order
// (a prefix, or all of them), so walking both in step pairs each training item with its own row;
// a held-out row is never read.
inline std::vector<std::vector<HistoryEntry>> training_histories(const data::Interactions& d, const data::Split& s) {
  std::vector<std::vector<HistoryEntry>> out(s.train.size());
  std::vector<size_t> order(d.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {  // as data::to_sequences
    if (d.user[a] != d.user[b]) return d.user[a] < d.user[b];
    return d.timestamp[a] < d.timestamp[b];
  });
  std::vector<size_t> first(size_t(d.users.size()), order.size());  // the first row of each user in `order`
  for (size_t k = order.size(); k-- > 0;) first[size_t(d.user[order[k]])] = k;
  for (size_t u = 1; u < s.train.size(); ++u) {
    const auto& seq = s.train[u];
    if (seq.empty()) continue;
    auto& h = out[u];
    h.reserve(seq.size());
    size_t k = u < first.size() ? first[u] : order.size();
    for (int32_t item : seq) {
      HistoryEntry e{item};
      while (k < order.size() && d.user[order[k]] == int32_t(u) && d.item[order[k]] != item) ++k;
      if (k < order.size() && d.user[order[k]] == int32_t(u)) {
        if (!d.rating.empty()) e.rating = d.rating[order[k]];
        ++k;
      }
      h.push_back(e);
    }
  }
  return out;
}

// Item lines for prompts: title, year and genres from the item metadata's columns, found by
// name (the first of each list that the data has; case-insensitive).
class ItemText {
 public:
  ItemText(const data::Metadata& meta, const data::IdMap& items) : meta_(&meta), items_(&items) {
    title_ = column({"movie_title", "title", "name", "item_name", "product_name"});
    year_ = column({"release_year", "year"});
    genres_ = column({"class", "genres", "genre", "categories", "category"});
  }

  // "Toy Story (1995); Animation Children's Comedy"; an item without a title is named by its id.
  std::string describe(int32_t item) const {
    std::string title = field(item, title_), year = field(item, year_), genres = field(item, genres_);
    std::replace(genres.begin(), genres.end(), '|', ',');  // csv lists "Animation|Comedy"
    if (!year.empty()) {
      double y = 0;
      const auto r = std::from_chars(year.data(), year.data() + year.size(), y);
      if (r.ec == std::errc() && r.ptr == year.data() + year.size() && y == std::floor(y) && std::fabs(y) < 1e5)
        year = std::to_string(int64_t(y));  // "1995.0" -> "1995"
    }
    std::string s = title.empty() ? "item " + detail::clip(items_->token(item), 60) : detail::clip(title, 120);
    if (!year.empty()) s += " (" + detail::clip(year, 12) + ")";
    if (!genres.empty()) s += "; " + detail::clip(genres, 120);
    return s;
  }
  bool has_titles() const { return title_ >= 0; }

 private:
  int column(std::initializer_list<const char*> names) const {
    for (const char* n : names)
      for (size_t c = 0; c < meta_->columns.size(); ++c) {
        const std::string& col = meta_->columns[c];
        if (col.size() == std::char_traits<char>::length(n) &&
            std::equal(col.begin(), col.end(), n, [](char a, char b) { return std::tolower((unsigned char)a) == b; }))
          return int(c);
      }
    return -1;
  }
  std::string field(int32_t item, int c) const {
    if (c < 0 || size_t(item) >= meta_->rows.size() || size_t(c) >= meta_->rows[size_t(item)].size()) return "";
    std::string v = meta_->rows[size_t(item)][size_t(c)];
    const size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
    return b == std::string::npos ? "" : v.substr(b, e - b + 1);
  }
  const data::Metadata* meta_;
  const data::IdMap* items_;
  int title_ = -1, year_ = -1, genres_ = -1;
};

// [begin, end) of a history.
struct PartRange {
  size_t begin = 0, end = 0;
  size_t size() const { return end - begin; }
  bool operator==(const PartRange&) const = default;
};

// Halves [0, n) recursively (the older half gets the smaller share of an odd count) until every
// part has at most `max_items` items; parts in time order. n <= max_items gives one part.
inline std::vector<PartRange> split_parts(size_t n, size_t max_items) {
  RD_REQUIRE(max_items >= 1, "max_items must be at least 1");
  std::vector<PartRange> out;
  auto halve = [&](auto&& self, size_t b, size_t e) -> void {
    if (e - b <= max_items) return out.push_back({b, e});
    const size_t m = b + (e - b) / 2;
    self(self, b, m);
    self(self, m, e);
  };
  if (n > 0) halve(halve, 0, n);
  return out;
}

namespace detail {

inline std::string rating_text(float r) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, r);
  return std::string(buf, res.ptr);
}

// The three sections both templates ask for (our wording of upstream's "short" profile).
inline const char* profile_sections() {
  return "Preferences: the genres and kinds of item this user favours, each with an approximate percentage of "
         "the history (together about 100%).\n"
         "Behavioural insights: how the user chooses and rates items, for example broad or narrow taste, "
         "mainstream or niche picks, generous or demanding ratings.\n"
         "Engagement trends: how the user's interests move from the earliest items to the most recent ones.\n"
         "Write about 150 words of plain text under exactly these three headings. Describe tastes rather than "
         "listing titles. Reply with the profile only.\n";
}

}  // namespace detail

// The prompt of one part [r.begin, r.end) of a history of n items (part `part` of `parts`).
inline std::string profile_prompt(const ItemText& items, const std::vector<HistoryEntry>& h, PartRange r, size_t part,
                                  size_t parts) {
  std::string p =
      "Below is the interaction history of one user of a recommender system, oldest first. Each line is one "
      "item: its title, with the release year and genres where known, and the user's rating where there is one.\n"
      "Write a short profile of this user with three sections:\n";
  p += detail::profile_sections();
  if (parts > 1)
    p += cat("This is part ", part + 1, " of ", parts, " of the history (items ", r.begin + 1, " to ", r.end, " of ",
             h.size(), "); profile this part only.\n");
  p += cat("\nHistory (", r.size(), " items):\n");
  for (size_t i = r.begin; i < r.end; ++i) {
    p += cat(i - r.begin + 1, ". ", items.describe(h[i].item));
    if (!std::isnan(h[i].rating)) p += "; rated " + detail::rating_text(h[i].rating);
    p += "\n";
  }
  return p;
}

// The prompt that merges the partial profiles of one user (parts in time order).
inline std::string merge_prompt(const std::vector<std::string>& partial, const std::vector<PartRange>& ranges, size_t n) {
  RD_REQUIRE(partial.size() == ranges.size() && partial.size() >= 2, "one partial profile per part, at least two");
  std::string p = cat(
      "Below are ", partial.size(),
      " profiles of the same user, each written from one consecutive part of the user's interaction history, "
      "oldest part first. Combine them into one profile of the whole history with three sections; weigh each "
      "part by its number of items when giving percentages:\n");
  p += detail::profile_sections();
  for (size_t i = 0; i < partial.size(); ++i)
    p += cat("\nPart ", i + 1, " (items ", ranges[i].begin + 1, " to ", ranges[i].end, " of ", n, "):\n", partial[i], "\n");
  return p;
}

// ---- the two rounds of requests ----

struct ProfileJob {
  size_t max_items = 100;   // llm.profile_max_items: items per prompt
  size_t limit_users = 0;   // profile only the first N training users (id order); 0 = all
};

// The profiles of one run: texts of the users that got one (internal ids in id order), and
// what happened to the others.
struct ProfileTexts {
  std::vector<int32_t> users;
  std::vector<std::string> texts;
  int64_t training_users = 0;  // users with a non-empty training sequence (after limit_users)
  int64_t split_users = 0;     // of those, users whose history was split into parts
  int64_t part_requests = 0, merge_requests = 0;
  // Users without a profile, by cause: no answer (failed or not sent), an unparseable reply,
  // an empty answer. `truncated` counts kept profiles whose answer hit the token limit.
  int64_t failed = 0, unparseable = 0, empty = 0, truncated = 0;
  std::vector<std::string> failed_users;  // the original id of every user without a profile, id order
  std::string first_failure;          // the first cause, for the report
  std::string stop;                   // why a batch stopped ("" = it did not): nothing is complete
  BatchReport parts, merges;          // the two batches (their `results` only when a batch stopped)
};

namespace detail {

enum class Answer { ok, failed, unparseable, empty };

// The answer text of a result, or why there is none.
inline Answer answer_of(const Result& r, std::string& text, std::string& why, bool& truncated) {
  if (r.status == Status::failed || r.status == Status::not_sent) {
    why = r.error.empty() ? std::string(status_name(r.status)) : r.error;
    return Answer::failed;
  }
  if (r.status == Status::unparseable) {
    why = r.error.empty() ? r.record.error : r.error;
    return Answer::unparseable;
  }
  const auto reply = chat_reply_of(r);
  if (const auto* e = std::get_if<ReplyError>(&reply)) {
    why = e->what;
    return Answer::unparseable;
  }
  const auto& c = std::get<ChatReply>(reply);
  const size_t b = c.content.find_first_not_of(" \t\r\n"), e = c.content.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) {
    why = "the answer is empty";
    return Answer::empty;
  }
  text = c.content.substr(b, e - b + 1);
  truncated = c.finish_reason == "length";
  return Answer::ok;
}

}  // namespace detail

// Profiles every training user of `s` (the first job.limit_users of them when set): one batch
// with the prompt of every part (one part for most users), then one batch merging the parts of
// the users whose history was split. Only requests the cache lacks are sent. When a batch stops
// (endpoint failure, budget), `stop` says why and no text is returned.
inline ProfileTexts write_profiles(Client& client, AnswerCache* cache, const data::Interactions& d, const data::Split& s,
                                   const ProfileJob& job, const BatchOptions& bo = {}) {
  const LlmConfig& cfg = client.config();
  const auto hist = training_histories(d, s);
  const ItemText items(d.item_meta, d.items);
  struct Plan {
    int32_t user;
    std::vector<PartRange> parts;
    size_t first_request;  // index of its first part's request
  };
  std::vector<Plan> plans;
  std::vector<Request> reqs;
  ProfileTexts out;
  for (size_t u = 1; u < hist.size(); ++u) {
    if (hist[u].empty()) continue;
    if (job.limit_users > 0 && plans.size() >= job.limit_users) break;
    Plan pl{int32_t(u), split_parts(hist[u].size(), job.max_items), reqs.size()};
    out.split_users += pl.parts.size() > 1;
    for (size_t i = 0; i < pl.parts.size(); ++i)
      reqs.push_back(chat_request(cfg, kProfilePurpose, kProfileTemplate,
                                  {{"user", profile_prompt(items, hist[u], pl.parts[i], i, pl.parts.size())}}));
    plans.push_back(std::move(pl));
  }
  out.training_users = int64_t(plans.size());
  out.part_requests = int64_t(reqs.size());
  out.parts = client.run(reqs, cache, bo);
  if (!out.parts.stop.empty()) {
    out.stop = out.parts.stop;
    return out;
  }
  using detail::Answer;
  auto no_profile = [&](int32_t user, Answer cause, const std::string& why) {
    (cause == Answer::failed ? out.failed : cause == Answer::unparseable ? out.unparseable : out.empty) += 1;
    out.failed_users.push_back(d.users.token(user));
    if (out.first_failure.empty()) out.first_failure = cat("user ", d.users.token(user), ": ", why);
  };
  // Users of one part are done; split users get a merge request when every part has an answer.
  struct Pending {
    size_t plan;
    size_t request;
  };
  std::vector<Pending> pending;
  std::vector<Request> merges;
  std::vector<std::string> text_of(plans.size());
  std::vector<char> truncated_of(plans.size(), 0);
  std::vector<Answer> cause_of(plans.size(), Answer::ok);
  std::vector<std::string> why_of(plans.size());
  for (size_t p = 0; p < plans.size(); ++p) {
    const Plan& pl = plans[p];
    std::vector<std::string> partial(pl.parts.size());
    for (size_t i = 0; i < pl.parts.size() && cause_of[p] == Answer::ok; ++i) {
      bool trunc = false;
      cause_of[p] = detail::answer_of(out.parts.results[pl.first_request + i], partial[i], why_of[p], trunc);
      if (cause_of[p] != Answer::ok && pl.parts.size() > 1) why_of[p] = cat("part ", i + 1, " of ", pl.parts.size(), ": ", why_of[p]);
      truncated_of[p] |= trunc && pl.parts.size() == 1;  // a cut partial profile is merged, not kept as is
    }
    if (cause_of[p] != Answer::ok) continue;
    if (pl.parts.size() == 1) {
      text_of[p] = std::move(partial[0]);
    } else {
      pending.push_back({p, merges.size()});
      merges.push_back(chat_request(cfg, kProfilePurpose, kProfileMergeTemplate,
                                    {{"user", merge_prompt(partial, pl.parts, hist[size_t(pl.user)].size())}}));
    }
  }
  out.merge_requests = int64_t(merges.size());
  if (!merges.empty()) {
    out.merges = client.run(merges, cache, bo);
    if (!out.merges.stop.empty()) {
      out.stop = out.merges.stop;
      return out;
    }
    for (const Pending& q : pending) {
      bool trunc = false;
      cause_of[q.plan] = detail::answer_of(out.merges.results[q.request], text_of[q.plan], why_of[q.plan], trunc);
      if (cause_of[q.plan] != Answer::ok) why_of[q.plan] = "merging the parts: " + why_of[q.plan];
      truncated_of[q.plan] = trunc;
    }
  }
  for (size_t p = 0; p < plans.size(); ++p) {
    if (cause_of[p] != Answer::ok) {
      no_profile(plans[p].user, cause_of[p], why_of[p]);
      continue;
    }
    out.users.push_back(plans[p].user);
    out.texts.push_back(std::move(text_of[p]));
    out.truncated += truncated_of[p];
  }
  // The records hold every prompt and reply; the counts are what the caller reports.
  out.parts.results = {};
  out.merges.results = {};
  return out;
}

// ---- output files ----

// The original ids of internal user ids.
inline std::vector<std::string> user_tokens(const data::Interactions& d, const std::vector<int32_t>& users) {
  std::vector<std::string> t;
  t.reserve(users.size());
  for (int32_t u : users) t.push_back(d.users.token(u));
  return t;
}

// JSON lines {"user": "<original id>", "text": "..."}.
inline std::string profile_texts_jsonl(const std::vector<std::string>& users, const std::vector<std::string>& texts) {
  RD_REQUIRE(users.size() == texts.size(), "one text per user");
  std::string o;
  for (size_t i = 0; i < users.size(); ++i)
    o += "{\"user\": " + io::json_quote(users[i]) + ", \"text\": " + io::json_quote(texts[i]) + "}\n";
  return o;
}

// The profile file (specs/profile-distillation.md §10): {"<original id>": [D numbers], ...}.
// Values are written as the shortest text that reads back as the same float32.
inline std::string profile_json(const std::vector<std::string>& users, const std::vector<std::vector<float>>& vectors) {
  RD_REQUIRE(users.size() == vectors.size(), "one vector per user");
  if (users.empty()) fail("no user has a profile: nothing to write");
  const size_t dim = vectors[0].size();
  std::string o = "{";
  char buf[32];
  for (size_t i = 0; i < users.size(); ++i) {
    if (vectors[i].size() != dim)
      fail("the embedding of user ", users[i], " has ", vectors[i].size(), " values, the first has ", dim);
    o += (i ? ",\n" : "\n") + io::json_quote(users[i]) + ": [";
    for (size_t k = 0; k < dim; ++k) {
      if (!std::isfinite(vectors[i][k])) fail("the embedding of user ", users[i], " holds a non-finite value at ", k);
      const auto r = std::to_chars(buf, buf + sizeof buf, vectors[i][k]);
      o += (k ? ", " : "") + std::string(buf, r.ptr);
    }
    o += "]";
  }
  return o + "\n}\n";
}

// Fields of a JSON object in order, values already encoded (io::json_quote, io::json_number).
using JsonObject = std::vector<std::pair<std::string, std::string>>;

// One field per line, for people reading it.
inline std::string json_object_text(const JsonObject& fields) {
  std::string o = "{";
  for (size_t i = 0; i < fields.size(); ++i)
    o += (i ? ",\n " : "\n ") + io::json_quote(fields[i].first) + ": " + fields[i].second;
  return o + "\n}\n";
}

// The sidecar's record of how the texts were made (PREFIX.json.meta.json, or the texts' own
// sidecar when they are embedded elsewhere), mirroring tools/metadata_profiles.py's; `extra`
// adds fields (the data and split settings, the embedding model and dimension).
inline JsonObject profile_meta(const LlmConfig& cfg, const ProfileJob& job, const ProfileTexts& t) {
  auto num = [](auto v) { return cat(v); };
  std::string failed = "[";
  for (size_t i = 0; i < t.failed_users.size(); ++i) failed += (i ? ", " : "") + io::json_quote(t.failed_users[i]);
  return {
      {"profile_kind", io::json_quote("llm")},
      {"template_version", io::json_quote(kProfileTemplate)},
      {"merge_template_version", io::json_quote(kProfileMergeTemplate)},
      {"model", io::json_quote(cfg.model)},
      {"temperature", io::json_number(cfg.temperature)},
      {"max_tokens", num(cfg.max_tokens)},
      {"history", io::json_quote("train_split")},
      {"profile_max_items", num(job.max_items)},
      {"limit_users", num(job.limit_users)},
      {"training_users", num(t.training_users)},
      {"users", num(t.users.size())},
      {"split_users", num(t.split_users)},
      {"part_requests", num(t.part_requests)},
      {"merge_requests", num(t.merge_requests)},
      {"users_without_profile", cat("{\"failed\": ", t.failed, ", \"unparseable\": ", t.unparseable, ", \"empty\": ",
                                    t.empty, "}")},
      {"failed_users", failed + "]"},
      {"first_failure", io::json_quote(t.first_failure)},
      {"truncated_answers", num(t.truncated)},
  };
}

}  // namespace recdistill::llm
