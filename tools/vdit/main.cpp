// The `vdit` command: parses the subcommand line with CLI11 and runs the chosen subcommand. Global
// options: --threads, --log-level. Exit codes: 0 ok, 1 runtime error, 2 usage error.
#include <algorithm>
#include <cstdio>
#include <map>

#include "dit/core/log.h"
#include "dit/core/parallel.h"
#include "tools/vdit/command.h"

namespace vdit::cli {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

int report_error(const std::string& message) {
  std::fprintf(stderr, "vdit: error: %s\n", message.c_str());
  return 1;
}

}  // namespace vdit::cli

namespace {
std::string group_description(const std::string& group) {
  if (group == "forward") return "Run one model component or attention call on tensors from a file (parity with PyTorch)";
  if (group == "bench") return "Benchmarks (validate against a reference, then time)";
  if (group == "calibrate") return "Build data that sparse methods need (e.g. PARO plans)";
  return group;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace vdit;
  CLI::App app{"vdit: native sampler and sparse-attention accelerator for video diffusion transformers (Wan2.1)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vdit 0.1.0");
  int threads = 0;
  std::string log_level = "warn";
  app.add_option("--threads", threads, "CPU threads (default: all cores)");
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  auto& registry = cli::command_registry();
  std::sort(registry.begin(), registry.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  // "forward dit" registers `dit` under a `forward` group created on first use.
  std::map<std::string, CLI::App*> groups;
  for (auto& cmd : registry) {
    CLI::App* parent = &app;
    std::string leaf = cmd.name;
    size_t space = cmd.name.find(' ');
    if (space != std::string::npos) {
      std::string group = cmd.name.substr(0, space);
      leaf = cmd.name.substr(space + 1);
      auto it = groups.find(group);
      if (it == groups.end()) {
        CLI::App* g = app.add_subcommand(group, group_description(group));
        g->require_subcommand(1);
        it = groups.emplace(group, g).first;
      }
      parent = it->second;
    }
    CLI::App* sub = parent->add_subcommand(leaf, cmd.description);
    runners.emplace_back(sub, cmd.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  set_num_threads(threads);
  set_log_level(log_level == "debug" ? LogLevel::debug : log_level == "info" ? LogLevel::info
                : log_level == "error" ? LogLevel::error : LogLevel::warn);
  set_log_sink([](LogLevel level, const std::string& msg) {
    std::fprintf(stderr, "vdit: %s: %s\n", log_level_name(level), msg.c_str());
  });
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) return run();
  }
  return 2;
}
