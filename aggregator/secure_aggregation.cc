#include "aggregator/secure_aggregation.h"

#include <algorithm>

#include "common/crypto/random.h"
#include "common/dp/ddg_encoding.h"
#include "common/secagg/parameters.h"
#include "common/secagg/update_vector.h"
#include "common/util/error.h"

namespace sotto::aggregator {

namespace {

// k and t for a cohort of n, as configured or as secagg::find_parameters chooses them; why not, if impossible.
std::variant<secagg::SecAggParameters, std::string> choose_parameters(const SecureAggregationOptions& s,
                                                                     std::uint32_t n) {
  if (n < secagg::kMinClients) {
    return "it needs at least " + std::to_string(secagg::kMinClients) + " clients in the cohort, and " +
           std::to_string(n) + " checked in";
  }
  secagg::SecAggParameters p;
  try {
    if (s.complete_graph || n <= 4) {
      p = secagg::complete_graph_parameters(n, s.dropout_rate);
    } else {
      try {
        p = secagg::find_parameters(n, s.dropout_rate, s.corruption_rate);
      } catch (const Error&) {
        // Small cohorts cannot meet the finder's failure bounds with any degree: the complete graph (the original
        // SecAgg) is then the most robust choice, and it still refuses rates it cannot survive.
        p = secagg::complete_graph_parameters(n, s.dropout_rate);
      }
    }
  } catch (const Error& e) {  // the configured rates: an input boundary, reported as the round's reason
    return std::string(e.what());
  }
  if (s.neighbours) p.k = std::min(s.neighbours, n - 1);
  if (s.threshold) p.t = s.threshold;
  if (p.t > p.k || 2 * p.t <= p.k) {
    return "threshold " + std::to_string(p.t) + " must be above half of the " + std::to_string(p.k) +
           " neighbours and at most their number";
  }
  return p;
}

}  // namespace

SecureAggregationRound::SecureAggregationRound(const SecureAggregationOptions& options, double clip_norm,
                                               secagg::RoundConfig config, bool quantized,
                                               std::optional<round::DistributedNoise> noise)
    : step_deadline_(options.step_deadline),
      session_(config),
      assignment_{config, clip_norm, {}, std::move(noise)},
      report_{config.n, config.k, config.t, {}, {}, {}} {
  if (quantized && !assignment_.noise) quantizer_.emplace(secagg::QuantizerParams{clip_norm, config.n, config.bits});
}

std::variant<std::unique_ptr<SecureAggregationRound>, std::string> SecureAggregationRound::begin(
    const SecureAggregationOptions& options, double clip_norm, std::uint64_t round_id,
    const std::vector<std::pair<ConnectionId, std::string>>& cohort, std::uint64_t vector_length, bool quantized,
    TimePoint now, TimePoint deadline, std::optional<round::DistributedNoise> noise, std::uint32_t evaluation_bins) {
  const auto n = static_cast<std::uint32_t>(cohort.size());
  auto chosen = choose_parameters(options, n);
  if (auto* why = std::get_if<std::string>(&chosen)) return *why;
  const auto& p = std::get<secagg::SecAggParameters>(chosen);
  std::unique_ptr<SecureAggregationRound> round;
  try {
    const std::uint64_t length = noise ? noise->ddg.padded + 2ull * evaluation_bins : vector_length;
    secagg::RoundConfig config{round_id, n, p.k, p.t, length, options.bits};
    crypto::random_bytes(config.graph_seed);  // fresh for each round, after the cohort is fixed
    round.reset(new SecureAggregationRound(options, clip_norm, config, quantized, std::move(noise)));
  } catch (const Error& e) {  // a configuration the session or the quantizer cannot run
    return std::string(e.what());
  }
  secagg::ClientIndex next = 0;
  for (const auto& [conn, client_id] : cohort) {
    round->seats_[conn] = Seat{next, std::nullopt};
    round->assignment_.index[conn] = next;
    round->client_ids_[next] = client_id;
    ++next;
  }
  round->assignment_.evaluation_bins = evaluation_bins;
  round->step_started_ = now;
  round->deadline_ = deadline;
  return round;
}

std::size_t SecureAggregationRound::masked_input_bytes() const {
  const auto& config = session_.config();
  return secagg::masked_input_bytes(static_cast<std::size_t>(config.vector_length), config.bits);
}

std::optional<std::string> SecureAggregationRound::out_of_turn(ConnectionId conn, secagg::Step step) const {
  const std::string what(secagg::step_message(step));
  auto it = seats_.find(conn);
  if (it == seats_.end()) return what + " sent by a connection that is not in this secure round";
  const auto& answered = it->second.answered;
  const bool previous_done = step == secagg::Step::kAdvertiseKeys
                                 ? !answered
                                 : answered && static_cast<int>(*answered) == static_cast<int>(step) - 1;
  if (step != step_ || !previous_done) {
    return what + " out of order: the round is at secure aggregation step " +
           std::to_string(static_cast<int>(step_)) + " (" + std::string(secagg::step_key(step_)) + ")";
  }
  return std::nullopt;
}

template <typename Feed>
std::optional<Refusal> SecureAggregationRound::feed(ConnectionId conn, secagg::Step step, Feed&& feed_session) {
  if (auto why = out_of_turn(conn, step)) return Refusal{v1::ERROR_CODE_UNEXPECTED_MESSAGE, std::move(*why)};
  Seat& seat = seats_.at(conn);
  try {
    feed_session(seat.index);
  } catch (const Error& e) {  // the session refused the message and is unchanged
    return Refusal{v1::ERROR_CODE_INVALID_UPDATE, e.what()};
  }
  seat.answered = step;
  ++report_.completed[step];
  return std::nullopt;
}

std::optional<Refusal> SecureAggregationRound::on_advertise(ConnectionId conn, const secagg::AdvertiseKeys& keys) {
  return feed(conn, secagg::Step::kAdvertiseKeys, [&](secagg::ClientIndex i) { session_.on_advertise(i, keys); });
}

std::optional<Refusal> SecureAggregationRound::on_shares(ConnectionId conn,
                                                         const std::vector<secagg::EncryptedShare>& shares) {
  return feed(conn, secagg::Step::kShareKeys,
              [&](secagg::ClientIndex i) { session_.on_encrypted_shares(i, secagg::EncryptedShares{shares}); });
}

std::optional<Refusal> SecureAggregationRound::on_masked_input(ConnectionId conn, secagg::MaskedInput input) {
  return feed(conn, secagg::Step::kMaskedInput,
              [&](secagg::ClientIndex i) { session_.on_masked_input(i, std::move(input)); });
}

std::optional<Refusal> SecureAggregationRound::on_unmask(ConnectionId conn, const secagg::UnmaskResponse& response) {
  return feed(conn, secagg::Step::kUnmasking,
              [&](secagg::ClientIndex i) { session_.on_unmask_response(i, response); });
}

std::variant<Refusal, std::vector<SecureAggregationRound::Leaving>> SecureAggregationRound::on_accusation(
    ConnectionId conn, const secagg::Accusation& accusation) {
  if (auto why = out_of_turn(conn, secagg::Step::kMaskedInput)) {
    return Refusal{v1::ERROR_CODE_UNEXPECTED_MESSAGE, "an accusation: " + *why};
  }
  const secagg::ClientIndex accuser = seats_.at(conn).index;
  secagg::ServerSession::Verdict verdict;
  try {
    verdict = session_.on_accusation(accuser, accusation);
  } catch (const Error& e) {
    return Refusal{v1::ERROR_CODE_INVALID_UPDATE, e.what()};
  }
  const std::string& accuser_id = client_ids_.at(accuser);
  std::vector<Leaving> leaving;
  for (const auto& offence : verdict.offences) {
    const std::string& culprit = client_ids_.at(offence.culprit);
    report_.convicted.push_back({culprit, offence.what, accuser_id, offence.input_counted});
    if (const ConnectionId c = conn_of(offence.culprit); c != 0 && offence.culprit != accuser) {
      leaving.push_back({c, "secure aggregation: convicted on client '" + accuser_id + "''s accusation: " +
                                offence.what});
    }
  }
  for (const auto& offence : verdict.offences) {
    if (offence.culprit == accuser) {
      leaving.push_back({conn, "secure aggregation: convicted on its own accusation: " + offence.what});
      break;
    }
  }
  return leaving;
}

void SecureAggregationRound::leave(ConnectionId conn) {
  seats_.erase(conn);
}

bool SecureAggregationRound::step_complete() const {
  return late().empty();
}

std::vector<ConnectionId> SecureAggregationRound::late() const {
  std::vector<ConnectionId> out;
  for (const auto& [conn, seat] : seats_) {
    if (!seat.answered || *seat.answered != step_) out.push_back(conn);
  }
  return out;
}

ConnectionId SecureAggregationRound::conn_of(secagg::ClientIndex index) const {
  for (const auto& [conn, seat] : seats_) {
    if (seat.index == index) return conn;
  }
  return 0;
}

SecureAggregationRound::StepOutcome SecureAggregationRound::close_step(TimePoint now, Actions& out) {
  report_.seconds[step_] = seconds_between(step_started_, now);
  try {
    switch (step_) {
      case secagg::Step::kAdvertiseKeys: {
        for (auto& [index, directory] : session_.close_advertise()) {
          out.push_back(action::SendKeyDirectory{conn_of(index), std::move(directory)});
        }
        break;
      }
      case secagg::Step::kShareKeys:
        for (auto& [index, shares] : session_.close_share_keys()) {
          out.push_back(action::SendShares{conn_of(index), std::move(shares.shares)});
        }
        break;
      case secagg::Step::kMaskedInput:
        for (auto& [index, request] : session_.close_masked_input()) {
          out.push_back(action::SendUnmaskRequest{conn_of(index), std::move(request)});
        }
        break;
      case secagg::Step::kUnmasking: {
        secagg::AggregationResult result = session_.close_unmasking();
        Summed summed{std::move(result.sum), {}};
        for (auto index : result.survivors) summed.contributors.push_back(client_ids_.at(index));
        return summed;
      }
    }
  } catch (const Error& e) {  // too few clients left for the step: the session has aborted
    return Failed{"secure aggregation step " + std::to_string(static_cast<int>(step_)) + " failed: " + e.what()};
  }
  step_ = static_cast<secagg::Step>(static_cast<int>(step_) + 1);
  step_started_ = now;
  deadline_ = now + step_deadline_;
  return Continue{};
}

std::optional<std::string> SecureAggregationRound::too_few_for_noise() const {
  if (!assignment_.noise) return std::nullopt;
  const std::uint32_t masked = session_.masked_inputs();
  const std::uint32_t needed = assignment_.noise->min_survivors;
  if (masked >= needed) return std::nullopt;
  return "only " + std::to_string(masked) + " masked inputs arrived, fewer than privacy.min_survivors = " +
         std::to_string(needed) + " whose noise shares make up the noise; the sum is not unmasked";
}

std::vector<double> SecureAggregationRound::decoded_sum(const Summed& summed) const {
  if (const auto& noise = assignment_.noise) return dp::ddg_decode_sum(summed.sum, noise->ddg, noise->rotation_seed);
  return quantizer_->decode_sum(summed.sum);
}

model::ModelParameters SecureAggregationRound::mean_update(std::vector<double> sum, std::size_t survivors,
                                                           const model::ModelParameters& like,
                                                           std::optional<double> fixed_denominator) const {
  double denominator = static_cast<double>(survivors);
  if (assignment_.noise) denominator = static_cast<double>(session_.config().n);
  if (fixed_denominator) denominator = *fixed_denominator;
  for (double& v : sum) v /= denominator;
  return secagg::unflatten_floating(sum, like);
}

}  // namespace sotto::aggregator
