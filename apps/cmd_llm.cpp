// recdistill llm: the LLM endpoint and the answer cache from the command line (docs/llm.md).
//
//   recdistill llm check  --config FILE.yaml            one tiny chat and one embedding request
//   recdistill llm batch  --config FILE.yaml --input REQUESTS.jsonl [--output ANSWERS.jsonl]
//                         [--embeddings] [--purpose P] [--template-id T]
//   recdistill llm import --config FILE.yaml --answers FILE.jsonl --template-id T --model M
//                         [--purpose P] [--id-field F] [--key-prefix S]
//
// The config's `llm` section names the endpoint, the models, the limits and the cache. `batch`
// sends only what the cache lacks, so rerunning an interrupted batch sends only the missing
// requests; `import` adds answers recorded elsewhere (data/alkdrec-ml's GPT-4 answers) to it.
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/data/text.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/llm/llm.hpp"
#include "recdistill/plugin/registry.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

namespace {

struct LlmArgs {
  std::string config;
  std::vector<std::string> sets;
  PluginArgs plugins;
};

void add_config_options(po::options_description& opts, LlmArgs& a) {
  opts.add_options()("help,h", "show this help")("config,c", po::value(&a.config)->required(),
                                                 "YAML config whose `llm` section is used")(
      "set", po::value(&a.sets)->composing(), "override a key: --set llm.model=NAME (repeatable)");
  add_plugin_options(opts, a.plugins);
}

bool parse(const Args& args, po::options_description& opts, const char* usage) {
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: " << usage << "\n" << opts;
    return false;
  }
  po::notify(vm);
  return true;
}

llm::LlmConfig llm_config(const LlmArgs& a) {
  return load_configs({a.config}, a.sets, open_plugins(a.plugins), false).common.llm;
}

std::string read_text(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, ": no such file (", what, ")");
  return data::detail::read_whole_file(path);
}

int llm_check(const Args& args) {
  po::options_description opts("recdistill llm check options");
  LlmArgs a;
  add_config_options(opts, a);
  if (!parse(args, opts, "recdistill llm check --config FILE.yaml")) return 0;
  const llm::LlmConfig cfg = llm_config(a);
  if (!cfg.live()) fail(a.config, ": llm.base_url is not set: no endpoint to check");
  llm::Client client(cfg);
  std::cout << "endpoint: " << client.config().base_url << " (API key: $" << cfg.api_key_env
            << (client.has_api_key() ? " is set, sent as a bearer token)" : " is not set, no Authorization header)") << "\n";
  // Chat: a tiny request, at most 16 completion tokens, never cached.
  const std::string chat_url = client.config().base_url + "/chat/completions";
  const auto ex = client.send(chat_url, llm::chat_body(cfg.model, {{"user", "Reply with the single word OK."}}, cfg.temperature, 16));
  if (!ex.error.empty()) fail(ex.error);
  const auto chat = llm::parse_chat_reply(ex.http.body);
  if (const auto* e = std::get_if<llm::ReplyError>(&chat)) fail(chat_url, ": ", e->what);
  const auto& r = std::get<llm::ChatReply>(chat);
  std::cout << "chat: model '" << cfg.model << "': HTTP " << ex.http.status << " in " << ex.http.seconds << " s"
            << (ex.attempts > 1 ? cat(" (", ex.attempts, " attempts)") : "") << ": " << io::json_quote(llm::detail::clip(r.content, 120))
            << " (finish_reason " << (r.finish_reason.empty() ? "none" : r.finish_reason) << ", " << r.usage.prompt_tokens
            << " prompt + " << r.usage.completion_tokens << " completion tokens"
            << (r.model.empty() ? "" : ", served by '" + r.model + "'") << ")\n";
  if (cfg.embedding_model.empty()) {
    std::cout << "embeddings: not checked (llm.embedding_model is not set)\n";
  } else {
    const std::string emb_url = client.config().embeddings_url() + "/embeddings";
    const auto ee = client.send(emb_url, llm::embeddings_body(cfg.embedding_model, {"recdistill check"}));
    if (!ee.error.empty()) fail(ee.error);
    const auto emb = llm::parse_embedding_reply(ee.http.body, 1);
    if (const auto* e = std::get_if<llm::ReplyError>(&emb)) fail(emb_url, ": ", e->what);
    std::cout << "embeddings: model '" << cfg.embedding_model << "': HTTP " << ee.http.status << " in " << ee.http.seconds
              << " s: 1 vector of dimension " << std::get<llm::EmbeddingReply>(emb).embeddings[0].size() << "\n";
  }
  std::cout << "ok: the endpoint answered\n";
  return 0;
}

int llm_batch(const Args& args) {
  po::options_description opts("recdistill llm batch options");
  LlmArgs a;
  std::string input, output, purpose, template_id = "batch";
  bool embeddings = false;
  add_config_options(opts, a);
  opts.add_options()("input,i", po::value(&input)->required(), "requests, JSON lines: {\"id\", \"prompt\"} or {\"id\", \"messages\"}; --embeddings: {\"id\", \"text\"}")(
      "output,o", po::value(&output), "answers to write, JSON lines in input order (never overwritten)")(
      "embeddings", po::bool_switch(&embeddings), "embed texts with llm.embedding_model instead of chatting")(
      "purpose", po::value(&purpose), "the cache key's purpose (default: chat, or embedding)")(
      "template-id", po::value(&template_id), "the cache key's template id (default: batch)");
  if (!parse(args, opts, "recdistill llm batch --config FILE.yaml --input REQUESTS.jsonl [--output ANSWERS.jsonl]")) return 0;
  if (purpose.empty()) purpose = embeddings ? "embedding" : "chat";
  std::error_code ec;
  if (!output.empty() && std::filesystem::exists(output, ec)) fail(output, ": exists; give another --output (nothing is overwritten)");
  const llm::LlmConfig cfg = llm_config(a);
  if (!cfg.live()) fail(a.config, ": llm.base_url is not set: no endpoint to send the batch to");
  if (embeddings && cfg.embedding_model.empty()) fail(a.config, ": --embeddings needs llm.embedding_model");
  const auto items = llm::parse_batch_input(read_text(input, "the --input requests"), input, embeddings);
  llm::Client client(cfg);
  llm::AnswerCache cache(cfg.cache);
  std::vector<llm::Request> reqs;
  for (const auto& it : items) {
    if (embeddings) {
      auto one = cfg;
      one.embedding_batch = 1;  // one text per request: one answer per input line
      reqs.push_back(llm::embedding_requests(one, purpose, template_id, {it.text})[0]);
    } else {
      reqs.push_back(llm::chat_request(cfg, purpose, template_id, it.messages));
    }
  }
  std::cout << "batch: " << reqs.size() << " requests from " << input << " to " << (embeddings ? cfg.embeddings_url() : cfg.base_url)
            << ", cache " << cfg.cache << "\n";
  llm::BatchOptions bo;
  bo.progress = &std::cout;
  const llm::BatchReport rep = client.run(reqs, &cache, bo);
  if (!output.empty()) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      const llm::Result& r = rep.results[i];
      io::JsonFields f;
      f.add("id", items[i].id).add("status", llm::status_name(r.status));
      if (r.status == llm::Status::answered || r.status == llm::Status::cached) {
        if (embeddings) {
          const auto e = llm::parse_embedding_reply(r.record.response, 1);
          if (const auto* v = std::get_if<llm::EmbeddingReply>(&e)) {
            std::string vec = "[";
            for (size_t k = 0; k < v->embeddings[0].size(); ++k) vec += (k ? ", " : "") + io::json_number(v->embeddings[0][k]);
            f.raw("embedding", vec + "]");
          }
        } else if (const auto c = llm::parse_chat_reply(r.record.response); std::holds_alternative<llm::ChatReply>(c)) {
          f.add("content", std::get<llm::ChatReply>(c).content);
        }
      }
      if (!r.error.empty()) f.add("error", r.error);
      out += "{" + f.body().substr(2) + "}\n";
    }
    io::write_file_atomic(output, out);
    std::cout << "wrote " << output << "\n";
  }
  std::cout << "llm: " << rep.summary() << "\n";
  const int64_t have = rep.answered + rep.cached;
  if (!rep.stop.empty())
    fail(rep.stop, "; ", have, " of ", reqs.size(), " requests have an answer in ", cfg.cache,
         ", run the same command again to send the rest");
  if (rep.failed || rep.unparseable) {
    std::string first;
    for (const auto& r : rep.results)
      if (first.empty() && (r.status == llm::Status::failed || r.status == llm::Status::unparseable)) first = r.error;
    const std::string failed = cat(rep.failed, " requests failed (not cached: the next run sends them again)");
    const std::string unparseable = cat(rep.unparseable, " replies are unparseable (cached: they were paid for)");
    fail(rep.failed && rep.unparseable ? failed + " and " + unparseable : rep.failed ? failed : unparseable, "; the first: ", first);
  }
  return 0;
}

int llm_import(const Args& args) {
  po::options_description opts("recdistill llm import options");
  LlmArgs a;
  std::string answers, template_id, model, purpose = "rank", id_field = "session_id", key_prefix = "session:";
  add_config_options(opts, a);
  opts.add_options()("answers", po::value(&answers)->required(), "recorded answers, JSON lines with an id field")(
      "template-id", po::value(&template_id)->required(), "the template id the answers are stored under (their own)")(
      "model", po::value(&model)->required(), "the model that gave them")(
      "purpose", po::value(&purpose), "the cache key's purpose (default: rank)")(
      "id-field", po::value(&id_field), "the field that identifies an answer (default: session_id)")(
      "key-prefix", po::value(&key_prefix), "the cache key is this + the id (default: session:)");
  if (!parse(args, opts, "recdistill llm import --config FILE.yaml --answers FILE.jsonl --template-id T --model M")) return 0;
  const llm::LlmConfig cfg = llm_config(a);
  const auto recs = llm::parse_recorded_answers(read_text(answers, "the --answers file"), answers,
                                                llm::CacheKey{purpose, template_id, model, ""}, id_field, key_prefix);
  llm::AnswerCache cache(cfg.cache);
  const size_t added = cache.add_recorded(recs);
  std::cout << "imported " << added << " of " << recs.size() << " recorded answers from " << answers << " into " << cfg.cache
            << " (" << recs.size() - added << " were there already), as " << purpose << "/" << template_id << "/" << model
            << "/" << key_prefix << "<" << id_field << ">\n";
  return 0;
}

}  // namespace

int cmd_llm(const Args& args) {
  const char* usage =
      "usage: recdistill llm check|batch|import --config FILE.yaml [options]\n"
      "  check   send one tiny chat request and one embedding request, report what came back\n"
      "  batch   send a file of requests (only those the cache lacks); --input REQUESTS.jsonl\n"
      "  import  add recorded answers to the cache; --answers FILE.jsonl --template-id T --model M\n"
      "'recdistill llm <sub> --help' shows its options.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << usage;
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "check") return llm_check(rest);
  if (args[0] == "batch") return llm_batch(rest);
  if (args[0] == "import") return llm_import(rest);
  std::cerr << "recdistill llm: unknown subcommand '" << args[0] << "'\n" << usage;
  return 2;
}

}  // namespace recdistill::app
