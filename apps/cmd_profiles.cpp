// recdistill profiles: LLM-written user profiles, embedded, in the profile file format
// (docs/llm.md, "LLM profiles"; specs/profile-distillation.md §10, §15).
//
//   recdistill profiles --config FILE.yaml [--set key=value ...] [--output PREFIX]
//                       [--limit-users N] [--embed-with endpoint|local] [--force]
//
// The data and split come from the config's `data.*` exactly as `recdistill train` reads them,
// and each prompt holds only a user's TRAINING sequence of that split. The config's `llm`
// section names the chat and embedding models and the answer cache, so a rerun sends only
// what the cache lacks. Writes PREFIX.texts.jsonl, then PREFIX.json ({"<user id>": [D numbers]})
// and PREFIX.json.meta.json; with --embed-with local it stops after the texts (and their
// sidecar PREFIX.texts.jsonl.meta.json) and prints the command of the local encoder.
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/data/interchange.hpp"
#include "recdistill/data/text.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/llm/llm.hpp"
#include "recdistill/llm/profiles.hpp"
#include "recdistill/plugin/registry.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

namespace {

// The data and split settings the profiles depend on, and the input files' SHA-256.
llm::JsonObject data_fields(const io::CommonConfig& c, const data::Split& split) {
  const auto& d = c.data;
  llm::JsonObject f = {
      {"split", io::json_quote(split.protocol)},
      {"data_format", io::json_quote(d.format)},
      {"data_path", io::json_quote(d.path)},
      {"data_item_path", io::json_quote(d.item_path)},
      {"data_prepared", io::json_quote(d.prepared)},
  };
  if (split.protocol == "temporal") {
    f.push_back({"temporal_quantile", io::json_number(d.temporal_quantile)});
    f.push_back({"valid_share", io::json_number(d.valid_share)});
    f.push_back({"seed", std::to_string(c.seed)});  // draws the validation users
  }
  if (split.protocol == "ratio") {
    std::string r = "[";
    for (size_t i = 0; i < d.split_ratios.size(); ++i) r += (i ? ", " : "") + io::json_number(d.split_ratios[i]);
    f.push_back({"split_ratios", r + "]"});
  }
  f.push_back({"filters", cat("{\"min_rating\": ", d.min_rating > -1e300 ? io::json_number(d.min_rating) : "null",
                              ", \"min_user_interactions\": ", d.min_user_interactions, ", \"min_item_interactions\": ",
                              d.min_item_interactions, ", \"drop_duplicates\": ", d.drop_duplicates ? "true" : "false", "}")});
  // The files the split came from: the seed's JSON files when the config names them.
  const auto seed_files = data::interchange_files(data::interchange_paths(d));
  std::vector<std::string> files = seed_files.empty() ? std::vector<std::string>{d.prepared, d.path} : seed_files;
  files.push_back(d.item_path);
  files.push_back(d.user_path);
  std::string inputs = "{";
  for (const std::string& p : files) {
    std::error_code ec;
    if (p.empty() || !std::filesystem::is_regular_file(p, ec)) continue;
    inputs += (inputs.size() > 1 ? ", " : "") + io::json_quote(p) + ": " +
              io::json_quote(llm::sha256_hex(data::detail::read_whole_file(p)));
  }
  f.push_back({"inputs", inputs + "}"});
  return f;
}

void append(llm::JsonObject& to, const llm::JsonObject& from) { to.insert(to.end(), from.begin(), from.end()); }

}  // namespace

int cmd_profiles(const Args& args) {
  po::options_description opts("recdistill profiles options");
  std::vector<std::string> configs, sets;
  std::string output, embed_with = "endpoint";
  size_t limit_users = 0;
  bool force = false;
  PluginArgs plugins;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&configs)->required()->composing(),
      "YAML config: its data.* give the dataset and split, its llm section the models and the cache (repeatable)")(
      "set", po::value(&sets)->composing(), "override a key: --set llm.profile_max_items=50 (repeatable)")(
      "output,o", po::value(&output),
      "output prefix: PREFIX.texts.jsonl, PREFIX.json, PREFIX.json.meta.json (default: training.model_dir/profiles/experiment_name.llm)")(
      "limit-users", po::value(&limit_users), "profile only the first N training users (to try a setup); 0 = all")(
      "embed-with", po::value(&embed_with),
      "endpoint: embed with llm.embedding_model through /embeddings (default); local: write the texts only and print "
      "the local encoder's command")("force", po::bool_switch(&force), "overwrite existing outputs");
  add_plugin_options(opts, plugins);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill profiles --config FILE.yaml [--output PREFIX] [--limit-users N]\n" << opts;
    return 0;
  }
  po::notify(vm);
  if (embed_with != "endpoint" && embed_with != "local")
    fail("--embed-with: expected endpoint or local, found '", embed_with, "'");
  const bool local = embed_with == "local";

  const RunConfig rc = load_configs(configs, sets, open_plugins(plugins), false);
  const io::CommonConfig& c = rc.common;
  const llm::LlmConfig& cfg = c.llm;
  if (cfg.model.empty()) fail(configs[0], ": llm.model is not set: name the chat model that writes the profiles");
  if (!local && cfg.embedding_model.empty())
    fail(configs[0], ": llm.embedding_model is not set: name the embedding model, or use --embed-with local");
  if (output.empty()) output = (std::filesystem::path(c.model_dir) / "profiles" / (c.experiment_name + ".llm")).string();
  const std::string texts_path = output + ".texts.jsonl", json_path = output + ".json",
                    meta_path = json_path + ".meta.json", texts_meta_path = texts_path + ".meta.json";
  const std::vector<std::string> outputs =
      local ? std::vector<std::string>{texts_path, texts_meta_path} : std::vector<std::string>{texts_path, json_path, meta_path};
  for (const auto& p : outputs) {
    std::error_code ec;
    if (!force && std::filesystem::exists(p, ec))
      fail(p, ": exists; give another --output or --force (nothing is overwritten)");
  }

  const PreparedData p = prepare_data(c, std::cout);
  const llm::ItemText items(p.data.item_meta, p.data.items);
  if (!items.has_titles())
    std::cout << "note: the item metadata has no title column (movie_title, title, name, ...): prompts name items by "
                 "their ids (data.item_path names the item file)\n";
  llm::ProfileJob job;
  job.max_items = size_t(cfg.profile_max_items);
  job.limit_users = limit_users;
  llm::Client client(cfg);
  llm::AnswerCache cache(cfg.cache);
  std::cout << "profiles: model '" << cfg.model << "' at " << (cfg.live() ? cfg.base_url : "(no endpoint: cache only)")
            << ", at most " << job.max_items << " items per prompt (llm.profile_max_items), template "
            << llm::kProfileTemplate << ", cache " << cfg.cache << "\n";
  llm::BatchOptions bo;
  bo.progress = &std::cout;
  const llm::ProfileTexts t = llm::write_profiles(client, &cache, p.data, p.split, job, bo);
  std::cout << "profiles: " << t.training_users << " training users, " << t.split_users << " split into parts; "
            << t.part_requests << " part requests, " << t.merge_requests << " merge requests\n";
  if (!t.stop.empty()) {
    const bool merging = !t.merges.stop.empty();
    const auto& rep = merging ? t.merges : t.parts;
    fail(t.stop, "; ", rep.answered + rep.cached, " of ", rep.results.size(), " ", merging ? "merge" : "part",
         " requests have an answer in ", cfg.cache,
         ", run the same command again to send the rest");
  }
  const int64_t missing = t.failed + t.unparseable + t.empty;
  if (missing > 0)
    std::cout << "warning: " << missing << " of " << t.training_users << " users have no profile (" << t.failed
              << " without an answer, " << t.unparseable << " unparseable, " << t.empty << " empty; failed ones are sent "
              << "again by the next run); the first: " << t.first_failure << "\n";
  if (t.truncated > 0)
    std::cout << "warning: " << t.truncated << " profiles were cut at llm.max_tokens (" << cfg.max_tokens
              << "); they are kept\n";
  if (t.users.empty()) fail("no user got a profile; the first failure: ", t.first_failure);

  const std::filesystem::path parent = std::filesystem::path(output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const auto tokens = llm::user_tokens(p.data, t.users);
  llm::JsonObject meta = llm::profile_meta(cfg, job, t);
  append(meta, data_fields(c, p.split));
  // Embed before writing anything: a failing embedding endpoint leaves no file behind, so the
  // same command can simply run again (the answers are in the cache).
  std::vector<std::vector<float>> vectors;
  if (!local) vectors = llm::embed(client, &cache, llm::kProfileEmbeddingPurpose, llm::kProfileTemplate, t.texts, bo);
  io::write_file_atomic(texts_path, llm::profile_texts_jsonl(tokens, t.texts));
  std::cout << "wrote " << texts_path << ": " << tokens.size() << " profile texts\n";
  if (local) {
    meta.push_back({"texts", io::json_quote(texts_path)});
    io::write_file_atomic(texts_meta_path, llm::json_object_text(meta));
    std::cout << "wrote " << texts_meta_path << "\n"
              << "next: embed the texts with the local encoder (all-MiniLM-L6-v2, 384-d; tools/metadata_profiles.py):\n"
              << "  .venv-profiles/bin/python tools/metadata_profiles.py --texts " << texts_path << " --out " << json_path
              << "\n";
    return 0;
  }
  const size_t dim = vectors.empty() ? 0 : vectors[0].size();
  io::write_file_atomic(json_path, llm::profile_json(tokens, vectors));
  meta.push_back({"embedding_model", io::json_quote(cfg.embedding_model)});
  meta.push_back({"dim", std::to_string(dim)});
  meta.push_back({"texts", io::json_quote(texts_path)});
  io::write_file_atomic(meta_path, llm::json_object_text(meta));
  std::cout << "wrote " << json_path << ": " << tokens.size() << " profiles of dimension " << dim << " (" << meta_path
            << "); use it as data.user_profile_embeddings_files\n";
  return 0;
}

}  // namespace recdistill::app
