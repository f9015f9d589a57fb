#include "client/state_commands.h"

#include <iostream>

#include "client/consent_gate.h"
#include "client/kept_generation.h"
#include "client/ledger.h"
#include "client/state_key.h"
#include "client/state_store.h"

namespace sotto::client {

namespace {

void add_store_options(CLI::App& command, StateCommandOptions& o) {
  command.add_option("--state-dir", o.state_dir, "The client's state.dir")->required();
  command.add_option("--key-file", o.key_file, "The client's state.key_file")->required();
  command.add_option("--generation-file", o.generation_file,
                     "The client's state.generation_file (default: <key-file>.generation)");
}

// The store as the client would open it, keeping the generation file up to date.
struct OpenedStore {
  explicit OpenedStore(const StateCommandOptions& o)
      : generation_file(o.generation_file.empty() ? default_kept_generation_file(o.key_file) : o.generation_file),
        store(o.state_dir, read_state_key_file(o.key_file), read_kept_generation(generation_file)) {
    store.on_change([this](std::uint64_t g) { write_kept_generation(generation_file, g); });
  }
  std::filesystem::path generation_file;
  StateStore store;
};

int show_consent(const StateCommandOptions& o) {
  OpenedStore opened(o);
  const ConsentRecord record = ConsentGate(&opened.store).record();
  if (o.json) {
    std::cout << consent_record_json(record) << '\n';
  } else {
    std::cout << "consent: " << describe(record) << '\n';
  }
  return 0;
}

int grant_consent(const StateCommandOptions& o) {
  const ConsentScope scope = consent_scope_from_names(o.scope);
  OpenedStore opened(o);
  ConsentGate gate(&opened.store);
  gate.grant(scope);
  std::cout << "consent: " << describe(gate.record()) << '\n';
  return 0;
}

int revoke_consent(const StateCommandOptions& o) {
  OpenedStore opened(o);
  ConsentGate gate(&opened.store);
  gate.revoke();
  delete_personal_data(opened.store, o.delete_ledger ? OnRevoke::kDeleteLedger : OnRevoke::kKeepLedger);
  std::cout << "consent: " << describe(gate.record()) << "; saved models and pending updates deleted"
            << (o.delete_ledger ? ", and the ledger" : "; the ledger is kept") << '\n';
  return 0;
}

int print_ledger(const StateCommandOptions& o) {
  OpenedStore opened(o);
  const Ledger ledger(opened.store);
  if (o.json) {
    std::cout << ledger.json_lines();
    return 0;
  }
  const auto entries = ledger.entries();
  std::cout << "consent: " << describe(ConsentGate(&opened.store).record()) << '\n';
  std::cout << entries.size() << " ledger entries" << (entries.empty() ? "" : ":") << '\n';
  for (const auto& entry : entries) std::cout << "  " << describe(entry) << '\n';
  return 0;
}

}  // namespace

void add_state_commands(CLI::App& app, StateCommandOptions& o) {
  auto* keygen = app.add_subcommand("keygen", "Write a new random state key (64 hex digits) to a new file, mode 0600");
  keygen->add_option("--key-file", o.key_file, "The file to create (never replaced)")->required();

  auto* consent = app.add_subcommand("consent", "Record or show the person's consent in a state directory");
  consent->require_subcommand(1);
  auto* grant = consent->add_subcommand("grant", "Record the person's opt-in");
  add_store_options(*grant, o);
  grant->add_option("--scope", o.scope, "What the person agreed to: training, analytics (default: both)")
      ->check(CLI::IsMember({"training", "analytics"}));
  auto* revoke = consent->add_subcommand("revoke", "Record the person's opt-out and delete what the device kept");
  add_store_options(*revoke, o);
  revoke->add_flag("--delete-ledger", o.delete_ledger, "Delete the ledger too (default: keep it for the person)");
  auto* show = consent->add_subcommand("show", "Print the person's consent");
  add_store_options(*show, o);
  show->add_flag("--json", o.json, "As JSON");

  auto* ledger = app.add_subcommand("ledger", "Print what this device shared: every contribution and its protection");
  add_store_options(*ledger, o);
  ledger->add_flag("--json", o.json, "One JSON object per entry, per line");
}

std::optional<int> run_state_command(const CLI::App& app, const StateCommandOptions& o) {
  if (app.got_subcommand("keygen")) {
    create_state_key_file(o.key_file);
    std::cout << "wrote a new state key to " << o.key_file.string()
              << " (mode 0600); keep it safe: the state sealed under it cannot be read without it\n";
    return 0;
  }
  if (app.got_subcommand("ledger")) return print_ledger(o);
  if (!app.got_subcommand("consent")) return std::nullopt;
  const CLI::App& consent = *app.get_subcommand("consent");
  if (consent.got_subcommand("grant")) return grant_consent(o);
  if (consent.got_subcommand("revoke")) return revoke_consent(o);
  return show_consent(o);
}

}  // namespace sotto::client
