// SecureAggregationRound: the aggregator's side of one SecAgg+ round once its cohort is fixed — the clients'
// indices, the step being collected (secagg::Step) and its deadline, who has answered it, the ServerSession that
// checks and sums their messages, and the quantizer that turns the survivors' sum back into a mean update.
//
// The RoundCoordinator owns the cohort and the round's phases; it hands this class the secure steps' messages and
// asks it what the step's close sends next. No clock (times are passed in) and no exception across it: a peer's bad
// message comes back as a refusal (the coordinator rejects and drops the sender), a step that leaves too few
// clients as a failure (the coordinator abandons the round).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "aggregator/refusal.h"
#include "aggregator/round_actions.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/server_session.h"
#include "common/secagg/step.h"

namespace sotto::aggregator {

class SecureAggregationRound {
 public:
  // What closing a step led to.
  struct Continue {};  // the next step's messages are in `out`; collect its answers
  struct Summed {      // unmasking succeeded
    std::vector<std::uint32_t> sum;         // mod 2^bits, the survivors' inputs
    std::vector<std::string> contributors;  // client ids of the survivors
  };
  struct Failed {
    std::string reason;
  };
  using StepOutcome = std::variant<Continue, Summed, Failed>;

  // Chooses k and t for the cohort (connection, client id) and opens the advertise step, due at `deadline`.
  // `quantized`: the inputs are updates clipped to clip_norm and quantized (a training round), not raw integers (a
  // secure sum).
  // `evaluation_bins`: the vector's last 2·evaluation_bins words (counted in vector_length) are accuracy histograms.
  // Returns why not when the cohort cannot run secure aggregation (too few clients, an impossible threshold).
  static std::variant<std::unique_ptr<SecureAggregationRound>, std::string> begin(
      const SecureAggregationOptions& options, double clip_norm, std::uint64_t round_id,
      const std::vector<std::pair<ConnectionId, std::string>>& cohort, std::uint64_t vector_length, bool quantized,
      TimePoint now, TimePoint deadline, std::optional<round::DistributedNoise> noise = std::nullopt,
      std::uint32_t evaluation_bins = 0);

  const action::SecAggAssignment& assignment() const { return assignment_; }
  const RoundReport::SecAgg& report() const { return report_; }
  secagg::Step step() const { return step_; }
  TimePoint deadline() const { return deadline_; }
  // The size of a masked input on the wire.
  std::size_t masked_input_bytes() const;

  // Why `conn` may not send the message of `step` now (not in this round, out of order, repeated), or nothing.
  std::optional<std::string> out_of_turn(ConnectionId conn, secagg::Step step) const;
  // A step's message from `conn`: nothing when accepted, else why it was refused — out of turn (see out_of_turn)
  // or refused by the session, which is then unchanged.
  std::optional<Refusal> on_advertise(ConnectionId conn, const secagg::AdvertiseKeys& keys);
  std::optional<Refusal> on_shares(ConnectionId conn, const std::vector<secagg::EncryptedShare>& shares);
  std::optional<Refusal> on_masked_input(ConnectionId conn, secagg::MaskedInput input);
  std::optional<Refusal> on_unmask(ConnectionId conn, const secagg::UnmaskResponse& response);
  // An accusation from `conn`, sent just before its masked input. The session judges it (server_session.h) and the
  // convictions go into report().convicted; returns who must now leave the round, convicted — each convicted
  // client still seated, the accuser among them when it accused falsely — or the refusal of a malformed or
  // out-of-turn accusation.
  struct Leaving {
    ConnectionId conn = 0;
    std::string reason;
  };
  std::variant<Refusal, std::vector<Leaving>> on_accusation(ConnectionId conn, const secagg::Accusation& accusation);

  // `conn` left the round (dropped, disconnected, refused): the protocol recovers without it or fails.
  void leave(ConnectionId conn);
  std::size_t remaining() const { return seats_.size(); }
  // Every remaining client answered the current step.
  bool step_complete() const;
  // The remaining clients that have not answered the current step.
  std::vector<ConnectionId> late() const;
  // Ends the current step: the next step's messages go to `out` and its deadline is now + step_deadline.
  StepOutcome close_step(TimePoint now, Actions& out);

  // Under distributed DP: why the masked inputs in hand may not be unmasked (fewer than the plan's min_survivors,
  // whose noise shares make up the noise), or nothing.
  std::optional<std::string> too_few_for_noise() const;

  // A training round's sum decoded to floating point: dequantized, or under DP mapped back to signed values and
  // un-rotated and un-scaled (the DDG's dimension: with adaptive clipping the clipped-count coordinate is last).
  std::vector<double> decoded_sum(const Summed& summed) const;
  // The survivors' unweighted mean update, laid out like `like`, from a training round's decoded sum. Under
  // distributed DP the denominator is the cohort's size, fixed when the round began, not the survivors'.
  // `denominator` overrides it (DP with a fixed expected cohort).
  model::ModelParameters mean_update(std::vector<double> sum, std::size_t survivors, const model::ModelParameters& like,
                                     std::optional<double> denominator = std::nullopt) const;

 private:
  struct Seat {
    secagg::ClientIndex index = 0;
    std::optional<secagg::Step> answered;  // the last step this client completed
  };

  SecureAggregationRound(const SecureAggregationOptions& options, double clip_norm, secagg::RoundConfig config,
                         bool quantized, std::optional<round::DistributedNoise> noise);
  // Feeds a message to the session; marks its sender's step done, or returns the session's refusal.
  template <typename Feed>
  std::optional<Refusal> feed(ConnectionId conn, secagg::Step step, Feed&& feed_session);
  ConnectionId conn_of(secagg::ClientIndex index) const;

  Duration step_deadline_;
  secagg::ServerSession session_;
  std::optional<secagg::Quantizer> quantizer_;
  action::SecAggAssignment assignment_;
  RoundReport::SecAgg report_;
  std::map<ConnectionId, Seat> seats_;
  std::map<secagg::ClientIndex, std::string> client_ids_;  // for the whole round, survivors or not
  secagg::Step step_ = secagg::Step::kAdvertiseKeys;
  TimePoint step_started_{};
  TimePoint deadline_{};
};

}  // namespace sotto::aggregator
