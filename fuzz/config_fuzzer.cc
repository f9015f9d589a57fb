// libFuzzer target: the TOML config readers of sotto-aggregator and sotto-client, on text an operator (or anyone
// who can write the config file) supplies.
//
// Input: the config file's bytes. Both readers parse it, each from a fresh TomlReader: they must accept it or throw
// sotto::Error naming what is wrong. Any other exception (std::terminate), a crash, a sanitizer report or a hang is
// a bug. A config that loads must load again to the same values (the readers have no hidden state), checked on a
// few fields that every section's reading feeds.
#include <cstddef>
#include <cstdint>
#include <spdlog/spdlog.h>
#include <string>

#include "aggregator/aggregator_config.h"
#include "client/client_config.h"
#include "common/config/toml_reader.h"
#include "common/util/error.h"

namespace {

using namespace sotto;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

template <typename Read>
void read_twice(const std::string& text, Read read) {
  try {
    auto first = config::TomlReader::from_string(text, "fuzz.toml");
    const auto a = read(first);
    auto second = config::TomlReader::from_string(text, "fuzz.toml");
    const auto b = read(second);
    check(a == b);
  } catch (const Error&) {
    // refused with a message: what bad input must get
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);  // the readers warn about deprecated keys; keep the run's output short
    return true;
  }();
  (void)quiet;
  if (size > 64 * 1024) return 0;  // a config file, not a data set
  const std::string text(reinterpret_cast<const char*>(data), size);
  read_twice(text, [](config::TomlReader& r) {
    const auto c = aggregator::read_aggregator_config(r);
    return std::make_tuple(c.port, c.rounds.total_rounds, c.rounds.cohort_target, c.rounds.clip_norm,
                           c.rounds.privacy.noise_multiplier, c.state_dir, c.client_tokens.size());
  });
  read_twice(text, [](config::TomlReader& r) {
    const auto s = client::read_sotto_client_config(r);
    return std::make_tuple(s.client.client_id, s.client.port, s.client.privacy.min_noise_multiplier,
                           s.client.privacy.accepted_modes, s.client.limits.training_threads);
  });
  return 0;
}
