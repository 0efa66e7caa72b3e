// recdistill plugins: list the plugin libraries found, with their versions, models and
// strategies, the libraries refused and the folders searched.
//
//   recdistill plugins [--plugin-dir DIR ...] [--no-default-plugins]
//
// Folders, in search order: --plugin-dir, RECDISTILL_PLUGIN_PATH (colon-separated), then the
// defaults: <exe dir>/../plugins (the build tree), <exe dir>/<bin-to-plugin-dir> (a relocated
// install) and the plugin folder of the configured install prefix.
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/program_options.hpp>
#include <iostream>

#include "app_util.hpp"
#include "commands.hpp"
#include "mpi_world.hpp"
#include "recdistill/plugin/registry.hpp"

#ifndef RECDISTILL_PLUGIN_INSTALL_DIR
#define RECDISTILL_PLUGIN_INSTALL_DIR ""
#endif
#ifndef RECDISTILL_PLUGIN_RELATIVE_DIR
#define RECDISTILL_PLUGIN_RELATIVE_DIR ""
#endif

namespace recdistill::app {

namespace po = boost::program_options;

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  const std::filesystem::path exe = boost::dll::program_location(ec);
  if (!ec) {
    const auto bin = exe.parent_path();
    dirs.push_back((bin / ".." / "plugins").lexically_normal().string());
    if (*RECDISTILL_PLUGIN_RELATIVE_DIR)
      dirs.push_back((bin / RECDISTILL_PLUGIN_RELATIVE_DIR).lexically_normal().string());
  }
  if (*RECDISTILL_PLUGIN_INSTALL_DIR) dirs.push_back(RECDISTILL_PLUGIN_INSTALL_DIR);
  return dirs;
}

plugin::Registry open_plugins(const PluginArgs& args) {
  plugin::SearchOptions so;
  so.dirs = args.dirs;
  if (!args.no_default) so.default_dirs = default_plugin_dirs();
  plugin::Registry reg(so);
  const dist::Comm* world = mpi_world();  // under mpirun, rank 0 alone warns
  if (!dist::parallel(world) || world->rank() == 0)
    for (const auto& r : reg.refused())
      std::cerr << "warning: plugin refused: " << r.file.string() << ": " << r.reason << "\n";
  return reg;
}

int cmd_plugins(const Args& args) {
  po::options_description opts("recdistill plugins options");
  PluginArgs pa;
  opts.add_options()("help,h", "show this help")("keys", "also print each model's config keys (the docs/config.md table)");
  add_plugin_options(opts, pa);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill plugins [--plugin-dir DIR ...]\n" << opts;
    return 0;
  }
  po::notify(vm);
  plugin::SearchOptions so;
  so.dirs = pa.dirs;
  if (!pa.no_default) so.default_dirs = default_plugin_dirs();
  const plugin::Registry reg(so);  // refusals are listed below, not warned about

  std::ostream& out = std::cout;
  out << "folders searched (in order):\n" << reg.folders_text();
  out << "\nplugins loaded (this recdistill: plugin ABI version " << plugin::kPluginAbiVersion << "):\n";
  if (reg.plugins().empty()) out << "  none\n";
  bool any_strategy = false;
  for (const auto& p : reg.plugins()) {
    out << "  " << p.info.name << " " << p.info.version << "  (ABI version " << p.abi_version << ")\n"
        << "    file: " << p.file.string() << "\n";
    out << "    models:" << (p.info.models.empty() ? " none\n" : "\n");
    // A name offered by an earlier library too: the registry asks the first, and this one only
    // when the earlier declines the configuration (the CPU and CUDA SASRec plugins split
    // runtime.backend that way); otherwise it is shadowed.
    auto shadow = [&](const std::string& name, std::vector<plugin::ComponentInfo> plugin::PluginInfo::*list) {
      for (const auto& q : reg.plugins()) {
        if (&q == &p) return std::string();
        for (const auto& c : q.info.*list)
          if (c.name == name) return "  (used only where " + q.file.string() + " declines the config)";
      }
      return std::string();
    };
    for (const auto& m : p.info.models) {
      out << "      " << m.name << "  " << m.description << shadow(m.name, &plugin::PluginInfo::models) << "\n";
      if (vm.count("keys")) out << "\n" << io::markdown_table(m.keys) << "\n";
    }
    out << "    strategies:" << (p.info.strategies.empty() ? " none\n" : "\n");
    for (const auto& s : p.info.strategies)
      out << "      " << s.name << "  " << s.description << shadow(s.name, &plugin::PluginInfo::strategies) << "\n";
    any_strategy = any_strategy || !p.info.strategies.empty();
  }
  if (!reg.plugins().empty() && !any_strategy)
    out << "  (no plugin offers a selection strategy yet)\n";
  if (!reg.refused().empty()) {
    out << "\nrefused:\n";
    for (const auto& r : reg.refused()) out << "  " << r.file.string() << ": " << r.reason << "\n";
  }
  return 0;
}

}  // namespace recdistill::app
