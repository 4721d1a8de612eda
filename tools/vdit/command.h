// Subcommand registry of the `vdit` CLI. Each command lives in its own cmd_<name>.cpp and registers
// itself with VDIT_REGISTER_COMMAND; main.cpp knows none of them by name. A name with a space
// ("forward dit") nests the command under a group (`vdit forward dit ...`).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit::cli {

// Adds the subcommand's options to `app` and returns the function that runs it (exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  std::string description;
  CommandSetup setup;
  int order;  // position in --help
};

std::vector<CommandInfo>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* description, int order, CommandSetup setup) {
    command_registry().push_back({name, description, std::move(setup), order});
  }
};

// Prints a library error the same way for every command: "vdit: error: <message>".
int report_error(const std::string& message);

}  // namespace vdit::cli

#define VDIT_REGISTER_COMMAND(name, description, order, setup) \
  static ::vdit::cli::CommandRegistrar VDIT_CONCAT(vdit_command_, __LINE__)(name, description, order, setup)
