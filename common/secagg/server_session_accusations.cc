// ServerSession's accusations (server_session.h, "Accusations"): judging one from the revealed pair keys, excluding
// whom it convicts, and adding each masked input held apart once no neighbour can accuse its sender any more.
#include "common/secagg/server_session.h"

#include <algorithm>

#include "common/secagg/share_envelope.h"
#include "common/util/error.h"

namespace sotto::secagg {

// A neighbour that received j's shares, has not sent its masked input and has not accused may still accuse j.
void ServerSession::add_settled(const std::vector<ClientIndex>& candidates) {
  for (ClientIndex j : candidates) {
    if (!held_.count(j)) continue;
    const auto& around = graph_->neighbours(j);
    const bool settled = std::none_of(around.begin(), around.end(), [&](ClientIndex u) {
      return reached_[u] == Reached::kShared && !excluded_[u] && accused_[u].empty();
    });
    if (settled) add_held(j);
  }
}

// R2, before the accuser's masked input ---------------------------------------------------------------------------

ServerSession::Verdict ServerSession::on_accusation(ClientIndex accuser, const Accusation& accusation) {
  expect(Step::kMaskedInput, "an accusation");
  check_index(accuser, Reached::kShared, "an accusation");
  const std::string where = "secagg: server, round " + std::to_string(config_.round_id) +
                            ": the accusation of client " + std::to_string(accuser) + " rejected: ";
  if (!accused_[accuser].empty()) throw Error(where + "it already accused");
  if (accusation.reveals.empty()) throw Error(where + "it accuses no one");
  const auto& relayed = relayed_[accuser];
  for (std::size_t a = 0; a < accusation.reveals.size(); ++a) {
    const ClientIndex j = accusation.reveals[a].accused;
    if (a > 0 && j <= accusation.reveals[a - 1].accused) {
      throw Error(where + "the accused are not sorted without repeats");
    }
    const bool sent = std::any_of(relayed.begin(), relayed.end(), [&](const auto& share) { return share.peer == j; });
    if (!sent) throw Error(where + "client " + std::to_string(j) + " sent it no shares");
  }
  Verdict verdict;
  for (const auto& reveal : accusation.reveals) {
    accused_[accuser].insert(reveal.accused);
    const auto revealed = crypto::X25519KeyPair::from_private_bytes(reveal.channel_private);
    if (revealed.public_key() != keys_[accuser]->channel_public.at(reveal.accused)) {
      verdict.offences.push_back({accuser, "revealed a channel private key for the pair with client " +
                                               std::to_string(reveal.accused) +
                                               " that is not the one it advertised, so its accusation cannot be "
                                               "checked"});
      break;
    }
    verdict.offences.push_back(judge(accuser, revealed, reveal.accused));
  }
  for (auto& offence : verdict.offences) exclude(offence);
  const auto accusers_neighbours = graph_->neighbours(accuser);  // it can accuse none of them any more
  std::vector<ClientIndex> candidates(accusers_neighbours.begin(), accusers_neighbours.end());
  for (const auto& offence : verdict.offences) {
    const auto& around = graph_->neighbours(offence.culprit);
    candidates.insert(candidates.end(), around.begin(), around.end());
  }
  add_settled(candidates);
  return verdict;
}

ServerSession::Offence ServerSession::judge(ClientIndex accuser, const crypto::X25519KeyPair& revealed,
                                            ClientIndex accused) const {
  const auto& relayed = relayed_[accuser];
  const auto share = std::find_if(relayed.begin(), relayed.end(), [&](const auto& s) { return s.peer == accused; });
  const auto key =
      channel_key(revealed, keys_[accused]->channel_public.at(accuser), config_.round_id, accuser, accused);
  const std::uint32_t x = *graph_->rank_of(accused, accuser) + 1;
  auto opened = open_shares(key, config_.round_id, accused, accuser, x, share->ciphertext);
  if (auto* why = std::get_if<std::string>(&opened)) {
    return {accused, "sent client " + std::to_string(accuser) + " shares that do not open: " + *why};
  }
  return {accuser, "accused client " + std::to_string(accused) +
                       " falsely: the shares relayed from it open and are well-formed"};
}

// A convicted client takes no further part; its masked input, if still held apart, is left out of the sum.
void ServerSession::exclude(Offence& offence) {
  const ClientIndex c = offence.culprit;
  excluded_[c] = true;
  if (held_.erase(c)) {
    reached_[c] = Reached::kShared;  // now a dropout after R1: its pairwise masks come out with its mask key
  } else if (reached_[c] == Reached::kMasked) {
    offence.input_counted = true;
  }
}

}  // namespace sotto::secagg
