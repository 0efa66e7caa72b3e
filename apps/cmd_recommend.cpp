// recdistill recommend: top-K items for given users (or sessions) from saved weights.
//
//   recdistill recommend --model-path RUN_DIR_OR_WEIGHTS [--config FILE.yaml ...] [--set k=v ...]
//                        (--users u1,u2,... | --users-file FILE | --items i1,i2,... ...) [--k 10]
//                        [--plugin-dir DIR ...] [--no-default-plugins]
//
// Each user's history is their full interaction sequence in the configured data (training,
// validation and test items, oldest first); items already in it are never recommended.
// --items gives an anonymous session instead (raw item ids, oldest first; repeatable, one
// session each), listed as `session-1`, `session-2`, ... in the output.
// Output (stdout), tab-separated with a header: user_id, rank, item_id, score; raw ids as in
// the data files. A user not in the data is an error naming the user.
#include <boost/program_options.hpp>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/plugin/registry.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

namespace {

// Users from "u1,u2" lists and a file of one user per line (blank lines and '#' comments skipped).
std::vector<std::string> read_users(const std::vector<std::string>& lists, const std::string& file) {
  std::vector<std::string> users;
  auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t b = 0;
    while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
    return s.substr(b);
  };
  for (const auto& l : lists) {
    size_t start = 0;
    while (start <= l.size()) {
      const size_t end = std::min(l.find(',', start), l.size());
      const std::string u = trim(l.substr(start, end - start));
      if (!u.empty()) users.push_back(u);
      start = end + 1;
    }
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) fail(file, ": cannot open the users file");
    std::string line;
    while (std::getline(in, line)) {
      line = trim(line);
      if (!line.empty() && line[0] != '#') users.push_back(line);
    }
  }
  if (users.empty()) fail("no users given (--users u1,u2 or --users-file FILE)");
  return users;
}

}  // namespace

int cmd_recommend(const Args& args) {
  po::options_description opts("recdistill recommend options");
  std::string model_path, users_file;
  std::vector<std::string> configs, sets, user_lists, item_lists;
  int k = 10;
  PluginArgs pa;
  opts.add_options()("help,h", "show this help")(
      "model-path,m", po::value(&model_path)->required(), "run folder of `train`, or a weights file")(
      "config,c", po::value(&configs)->composing(),
      "YAML config (repeatable; default: the run folder's config.yaml)")(
      "set", po::value(&sets)->composing(), "override a key (repeatable)")(
      "users,u", po::value(&user_lists)->composing(), "comma-separated raw user (or session) ids")(
      "users-file", po::value(&users_file), "file with one raw user id per line")(
      "items", po::value(&item_lists)->composing(), "an anonymous session: comma-separated raw item ids, oldest first (repeatable)")(
      "k", po::value(&k)->default_value(10), "number of items per user");
  add_plugin_options(opts, pa);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill recommend --model-path RUN_DIR --users u1,u2 [--k 10]\n" << opts;
    return 0;
  }
  po::notify(vm);
  if (k < 1) fail("--k: expected a positive number of items, found ", k);
  std::vector<std::string> users;
  if (!user_lists.empty() || !users_file.empty() || item_lists.empty()) users = read_users(user_lists, users_file);
  const auto [weights, files] = resolve_model_path(model_path, configs);
  const plugin::Registry registry = open_plugins(pa);
  const RunConfig rc = load_configs(files, sets, registry);
  const io::CommonConfig& cfg = rc.common;
  // Progress goes to stderr: stdout carries only the table.
  std::cerr << "config: " << cfg.source << ": model " << cfg.model_name << ", data " << cfg.data.path << "\n";
  auto model = registry.create_model(cfg.model_name, rc.layers);
  const PreparedData prep = prepare_data(cfg, std::cerr);
  model->load(weights, prep.data);

  const data::UserSequences seqs = data::to_sequences(prep.data);
  std::vector<std::vector<int32_t>> histories;
  for (const auto& u : users) {
    const int32_t id = prep.data.users.find(u);
    if (id < 1) fail("recommend: user '", u, "' is not in ", cfg.data.path);
    if (seqs.items[size_t(id)].empty()) fail("recommend: user '", u, "' has no interactions");
    histories.push_back(seqs.items[size_t(id)]);
  }
  for (size_t s = 0; s < item_lists.size(); ++s) {
    std::vector<int32_t> h;
    std::stringstream ss(item_lists[s]);
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      if (tok.empty()) continue;
      const int32_t id = prep.data.items.find(tok);
      if (id < 1) fail("recommend: --items: item '", tok, "' is not in ", cfg.data.path);
      h.push_back(id);
    }
    if (h.empty()) fail("recommend: --items '", item_lists[s], "' names no item");
    users.push_back(cat("session-", s + 1));
    histories.push_back(std::move(h));
  }
  const auto recs = model->recommend(histories, k, histories);
  std::cout << "user_id\trank\titem_id\tscore\n" << std::setprecision(6);
  for (size_t i = 0; i < users.size(); ++i)
    for (size_t r = 0; r < recs[i].size(); ++r)
      std::cout << users[i] << "\t" << r + 1 << "\t" << prep.data.items.token(recs[i][r].item) << "\t"
                << recs[i][r].score << "\n";
  return 0;
}

}  // namespace recdistill::app
