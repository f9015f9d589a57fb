// sotto-client's commands for the person, on a state directory while no client runs on it: `keygen` makes a state
// key file, `consent grant|revoke|show` records or prints the person's choice (consent.h) exactly as the library's
// Client::set_consent does, deletions on revoke included, and `ledger` prints what the device shared (ledger.h).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sotto::client {

struct StateCommandOptions {
  std::filesystem::path state_dir;
  std::filesystem::path key_file;
  std::filesystem::path generation_file;  // empty: <key_file>.generation
  std::vector<std::string> scope{"training", "analytics"};
  bool delete_ledger = false;
  bool json = false;
};

// Adds the subcommands to `app`; their options land in `options`.
void add_state_commands(CLI::App& app, StateCommandOptions& options);
// Runs the subcommand `app` parsed, if it is one of them: its exit status. Throws sotto::Error.
std::optional<int> run_state_command(const CLI::App& app, const StateCommandOptions& options);

}  // namespace sotto::client
