#include "aggregator/privacy_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/util/error.h"
#include "common/util/json_lines.h"

namespace sotto::aggregator {

std::vector<double> PrivacyJournal::load(std::size_t orders, const std::vector<double>& checkpointed) const {
  std::vector<double> sum(orders, 0.0);
  std::size_t line = 0;
  for (const auto& record : util::read_json_lines(path_)) {
    ++line;
    const auto rdp = record.at("rdp").get<std::vector<double>>();
    if (rdp.size() != orders) {
      throw Error("privacy journal " + path_.string() + ": line " + std::to_string(line) + " has " +
                  std::to_string(rdp.size()) + " RDP orders, expected " + std::to_string(orders));
    }
    for (std::size_t i = 0; i < orders; ++i) sum[i] += rdp[i];
  }
  for (std::size_t i = 0; i < checkpointed.size() && i < orders; ++i) {
    if (sum[i] < checkpointed[i] * (1 - 1e-9)) {
      throw Error("privacy journal " + path_.string() + " holds less privacy spent than the checkpoint recorded (" +
                  std::to_string(line) + " lines): charges were lost. Restore the journal from a backup; the " +
                  "aggregator will not start and under-count the privacy it has spent");
    }
  }
  return sum;
}

void PrivacyJournal::append(const RoundCharge& c, const PrivacyOptions& o, std::uint32_t honest) const {
  const auto& p = c.ddg;
  const nlohmann::json line = {{"round", c.round_id},           {"mode", "distributed"},
                               {"clients", c.clients},          {"min_survivors", o.min_survivors},
                               {"honest", honest},              {"bits", p.bits},
                               {"clip_norm", p.clip_norm},      {"noise_multiplier", p.noise_multiplier},
                               {"scale", p.scale},              {"l2_bound", p.l2_bound},
                               {"local_stddev", p.local_stddev}, {"dimension", p.dimension},
                               {"padded", p.padded},            {"delta", o.delta},
                               {"epsilon", c.epsilon.epsilon},  {"order", c.epsilon.order},
                               {"sampling", kNoAmplification},  {"rdp", c.rdp}};
  const std::string text = line.dump() + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  std::size_t written = 0;
  while (ok && written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    throw Error("cannot write the privacy journal " + path_.string() + " (" + std::strerror(saved) +
                "): round " + std::to_string(c.round_id) + "'s sum is not unmasked");
  }
}

}  // namespace sotto::aggregator
