// recdistill prepare: import, filter and split the configured data once, into one verified
// binary file that training reads back instead of importing (docs/data.md, "Prepared
// datasets").
//
//   recdistill prepare --config FILE.yaml [--set section.key=value ...] [--output FILE]
//                      [--export-json DIR]
//
// The output defaults to data.prepared. The file is written atomically; afterwards it is read
// back and verified, and the counts and timings of each stage are printed. --export-json also
// (or, without an output, only) writes the split as the seed's JSON files (data/interchange.hpp).
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "app_util.hpp"
#include "commands.hpp"
#include "recdistill/data/prepared.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/plugin/registry.hpp"
#include "recdistill/train/checkpoint.hpp"

namespace recdistill::app {

namespace po = boost::program_options;

int cmd_prepare(const std::vector<std::string>& args) {
  po::options_description opts("recdistill prepare options");
  std::string config, output, export_dir;
  std::vector<std::string> sets;
  PluginArgs pa;
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&config)->required(), "YAML experiment config (its data section is used)")(
      "set", po::value(&sets)->composing(), "override a key: --set data.split=temporal (repeatable)")(
      "output,o", po::value(&output), "prepared file to write (default: data.prepared)")(
      "export-json", po::value(&export_dir),
      "also write the split as the seed's JSON files into DIR (train/valid/test_sequences.json, mappings.json, "
      "counts.json; docs/data.md)");
  add_plugin_options(opts, pa);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: recdistill prepare --config FILE.yaml [--set key=value ...] [--output FILE] [--export-json DIR]\n"
              << opts;
    return 0;
  }
  po::notify(vm);
  // The model's plugin, when found, lets its keys in the file pass the check.
  auto cfg = load_configs({config}, sets, open_plugins(pa), false).common;
  if (output.empty()) output = cfg.data.prepared;
  if (output.empty() && export_dir.empty())
    fail(config, ": no output file: give --output FILE, set data.prepared, or give --export-json DIR");
  if (!export_dir.empty())  // refused before anything is imported or written
    for (const char* name : {"train_sequences.json", "valid_sequences.json", "test_sequences.json", "mappings.json",
                             "counts.json"})
      if (std::filesystem::exists(std::filesystem::path(export_dir) / name))
        fail((std::filesystem::path(export_dir) / name).string(),
             ": already exists; --export-json never overwrites (choose another folder)");
  if (output.empty()) {  // the JSON files only
    const auto prepared = data::import_data(cfg);
    for (const auto& f : data::write_interchange(export_dir, prepared.dataset, prepared.split))
      std::cout << "wrote " << f << "\n";
    std::cout << "split: " << prepared.split.protocol << ": " << prepared.split.valid.size() << " validation and "
              << prepared.split.test.size() << " test cases; use them as data.profile_train_sequences (and "
              << "finetune_train_sequences), valid_sequences, test_sequences, mappings, counts\n";
    return 0;
  }
  if (const auto dir = std::filesystem::path(output).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir);
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };

  auto t = clock::now();
  data::FilterReport report;
  const auto prepared = data::import_data(cfg, &report);
  const double import_s = secs(t);
  t = clock::now();
  auto header = data::prepared_header(cfg);
  header.import_seconds = import_s;
  const double hash_s = secs(t);
  t = clock::now();
  data::write_prepared(output, prepared, header);
  const double write_s = secs(t);
  // Read back the way training does (hash the inputs, verify, deserialise), and compare.
  auto as_training = cfg;
  as_training.data.prepared = output;
  const auto back = data::load_prepared_or_import(as_training);
  const double read_s = back.seconds;
  if (!(back.dataset == prepared.dataset) || !(back.split == prepared.split))
    fail(output, ": the file read back differs from what was written");

  const auto& d = prepared.dataset;
  const auto& s = prepared.split;
  size_t train_items = 0;
  for (const auto& seq : s.train) train_items += seq.size();
  std::cout << std::fixed << std::setprecision(3);
  std::cout << "data: " << cfg.data.path << " (" << cfg.data.format << "): " << report.rows_in << " rows read";
  if (report.by_rating || report.by_duplicates || report.by_kcore)
    std::cout << ", dropped " << report.by_rating << " by rating, " << report.by_duplicates << " duplicates, "
              << report.by_kcore << " by k-core (" << report.kcore_rounds << " rounds)";
  std::cout << "\n      " << d.size() << " interactions, " << d.users.size() - 1 << " users, "
            << d.items.size() - 1 << " items, " << d.duplicates << " duplicate rows\n"
            << "split: " << s.protocol << ": " << train_items << " training items, " << s.valid.size()
            << " validation cases, " << s.test.size() << " test cases\n"
            << "inputs:";
  for (const auto& f : header.inputs) std::cout << " " << f.path << " (" << f.bytes << " bytes)";
  std::cout << "\nwrote " << output << ": " << std::filesystem::file_size(output) << " bytes, settings hash "
            << io::hex64(header.settings_hash) << ", input hash " << io::hex64(header.input_hash)
            << ", mapping hash " << io::hex64(data::mapping_hash(d)) << "\n"
            << "time: import + filter + split " << import_s << " s, hash inputs " << hash_s << " s, write "
            << write_s << " s; read back as training does (hash inputs, verify, deserialise) " << read_s
            << " s\n"
            << "train with data.prepared: " << output << " (or --set data.prepared=" << output << ")\n";
  check_profiles(cfg, d, s, std::cout);
  if (!export_dir.empty())
    for (const auto& f : data::write_interchange(export_dir, d, s)) std::cout << "wrote " << f << "\n";
  return 0;
}

}  // namespace recdistill::app
