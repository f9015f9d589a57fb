// RoundCoordinator's events in a secure round: the SecAgg+ steps' messages, their deadlines, and the round's end
// once the survivors' sum is unmasked. The steps themselves are SecureAggregationRound's (secure_aggregation.h).
#include "aggregator/round_coordinator.h"

#include <cmath>

#include "common/crypto/random_stream.h"
#include "common/dp/adaptive_clipping.h"
#include "common/dp/ddg_accounting.h"
#include "common/dp/ddg_encoding.h"

namespace sotto::aggregator {

// Whether `conn` is training in the secure round now; if not, it is rejected and forgotten.
bool RoundCoordinator::secure_step_open(ConnectionId conn, secagg::Step step, TimePoint now, Actions& out) {
  if (phase_ == Phase::kTraining && secure_ && cohort_.count(conn)) return true;
  reject_stranger(conn,
                  std::string(secagg::step_message(step)) + " sent outside a secure round this connection takes part in",
                  now, out);
  return false;
}

// After a step's message: a refused sender is rejected and dropped; the step closes if everyone has answered.
Actions RoundCoordinator::after_secure_message(ConnectionId conn, std::optional<Refusal> refusal, TimePoint now) {
  Actions out;
  if (refusal) reject_and_drop(conn, refusal->code, refusal->message, out);
  maybe_close_step(now, out);
  return out;
}

Actions RoundCoordinator::on_secagg_advertise(ConnectionId conn, const secagg::AdvertiseKeys& keys, TimePoint now) {
  Actions out;
  if (!secure_step_open(conn, secagg::Step::kAdvertiseKeys, now, out)) return out;
  return after_secure_message(conn, secure_->on_advertise(conn, keys), now);
}

Actions RoundCoordinator::on_secagg_shares(ConnectionId conn, const std::vector<secagg::EncryptedShare>& shares,
                                           TimePoint now) {
  Actions out;
  if (!secure_step_open(conn, secagg::Step::kShareKeys, now, out)) return out;
  return after_secure_message(conn, secure_->on_shares(conn, shares), now);
}

// The masked input is checked like any update (round, examples, metrics) before the session takes it.
Actions RoundCoordinator::on_masked_input(ConnectionId conn, MaskedUpload upload, TimePoint now) {
  Actions out;
  if (!secure_step_open(conn, secagg::Step::kMaskedInput, now, out)) return out;
  std::optional<Refusal> refusal;
  if (auto invalid = check_update(upload)) {
    refusal = Refusal{v1::ERROR_CODE_INVALID_UPDATE, *invalid};
  } else {
    refusal = timed(secure_work_.summing, [&] { return secure_->on_masked_input(conn, std::move(upload.input)); });
  }
  if (!refusal) {
    const std::string& client_id = cohort_.at(conn).client_id;
    count_update(client_id, upload, counted_examples(client_id, upload));
  }
  return after_secure_message(conn, std::move(refusal), now);
}

// An accusation comes just before the accuser's masked input. Whoever it convicts is rejected and dropped, and
// counted towards rounds.exclude_after_offences; an accuser that is not convicted stays in the round.
Actions RoundCoordinator::on_secagg_accusation(ConnectionId conn, const secagg::Accusation& accusation, TimePoint now) {
  Actions out;
  if (!secure_step_open(conn, secagg::Step::kMaskedInput, now, out)) return out;
  const std::size_t judged_before = secure_->report().convicted.size();
  auto judged = secure_->on_accusation(conn, accusation);
  if (auto* refusal = std::get_if<Refusal>(&judged)) return after_secure_message(conn, std::move(*refusal), now);
  const auto& convicted = secure_->report().convicted;
  for (std::size_t c = judged_before; c < convicted.size(); ++c) ++offences_[convicted[c].client];
  for (const auto& leaving : std::get<std::vector<SecureAggregationRound::Leaving>>(judged)) {
    reject_and_drop(leaving.conn, v1::ERROR_CODE_INVALID_UPDATE, leaving.reason, out);
  }
  maybe_close_step(now, out);
  return out;
}

Actions RoundCoordinator::on_secagg_unmask(ConnectionId conn, const secagg::UnmaskResponse& response, TimePoint now) {
  Actions out;
  if (!secure_step_open(conn, secagg::Step::kUnmasking, now, out)) return out;
  return after_secure_message(conn, secure_->on_unmask(conn, response), now);
}

void RoundCoordinator::maybe_close_step(TimePoint now, Actions& out) {
  if (phase_ != Phase::kTraining || !secure_) return;
  if (cohort_.size() < options_.cohort_min) {
    close_round(now, false,
                "only " + std::to_string(cohort_.size()) + " clients remain, fewer than cohort_min " +
                    std::to_string(options_.cohort_min),
                out);
  } else if (secure_->step_complete()) {
    close_step(now, out);
  }
}

// The step's deadline passed: the clients that did not answer are dropped and the round goes on without them.
void RoundCoordinator::expire_step(TimePoint now, Actions& out) {
  const auto step = secure_->step();
  for (ConnectionId conn : secure_->late()) {
    reject_and_drop(conn, v1::ERROR_CODE_DEADLINE_EXCEEDED,
                    "no answer before secure aggregation step " + std::to_string(static_cast<int>(step)) +
                        "'s deadline; the round went on without it",
                    out);
  }
  if (cohort_.size() < options_.cohort_min) {
    maybe_close_step(now, out);
  } else {
    close_step(now, out);
  }
}

// Closing the masked-input step under distributed DP: no sum of too few noise shares is unmasked, and the round's
// privacy is debited before the unmask requests go out.
void RoundCoordinator::close_step(TimePoint now, Actions& out) {
  if (charge_ && secure_->step() == secagg::Step::kMaskedInput) {
    if (auto why = secure_->too_few_for_noise()) {
      close_round(now, false, *why, out);
      return;
    }
    debit_privacy(out);
  }
  // Closing the masked inputs adds those still held; closing the unmask responses removes the masks.
  const secagg::Step closing = secure_->step();
  auto close = [&] { return secure_->close_step(now, out); };
  auto outcome = closing == secagg::Step::kMaskedInput ? timed(secure_work_.summing, close)
                 : closing == secagg::Step::kUnmasking ? timed(secure_work_.unmasking, close)
                                                       : close();
  if (auto* failed = std::get_if<SecureAggregationRound::Failed>(&outcome)) {
    close_round(now, false, failed->reason, out);
  } else if (auto* summed = std::get_if<SecureAggregationRound::Summed>(&outcome)) {
    finish_secure_round(std::move(*summed), now, out);
  }
}

// A training round applies the survivors' unweighted mean (each input is in the sum with equal weight); a secure-sum
// round (federated analytics) publishes the sum and whose inputs are in it, under DP as signed values. In central DP
// mode the aggregator's own noise goes on the sum first (the round was debited before the unmask requests).
void RoundCoordinator::finish_secure_round(SecureAggregationRound::Summed summed, TimePoint now, Actions& out) {
  report_.survivors = static_cast<std::uint32_t>(summed.contributors.size());
  const std::uint32_t bits = secure_->assignment().config.bits;
  if (charge_ && options_.privacy.mode == PrivacyMode::kCentral) {
    crypto::RandomStream noise;
    dp::add_discrete_gaussian_mod(summed.sum, charge_->ddg.local_stddev, bits, noise);
  }
  if (options_.secure_sum_length) {
    if (charge_) {
      report_.private_sum = dp::signed_values(summed.sum, bits);
    } else {
      report_.secure_sum = std::move(summed.sum);
    }
    report_.participants = std::move(summed.contributors);
  } else {
    std::optional<double> denominator;
    if (charge_) denominator = charge_->clients;  // fixed before the round: the cohort, or the expected one
    if (const std::uint32_t bins = secure_->assignment().evaluation_bins; bins > 0) read_histogram(summed, bins);
    auto sum = timed(secure_work_.decoding, [&] { return secure_->decoded_sum(summed); });
    std::vector<std::uint32_t>().swap(summed.sum);  // decoded: its words need not sit beside the mean
    if (charge_ && charge_->count_weight > 0) {
      adapt_clip_norm(sum.back());
      sum.pop_back();
    }
    sum_.add_mean(secure_->mean_update(std::move(sum), summed.contributors.size(), *global_, denominator));
  }
  close_round(now, true, "", out);
}

// A secure training round's vector can end with the devices' accuracy histograms (noised and charged under
// distributed DP), when every device of the cohort can add them (an older sotto-client cannot, and would fail the
// round).
std::uint32_t RoundCoordinator::accuracy_bins(bool secure_sum) {
  if (secure_sum || options_.evaluation_bins == 0) return 0;
  const bool noised = budget_.enabled();
  if (noised && options_.privacy.mode != PrivacyMode::kDistributed) return 0;  // only distributed shares noise them
  std::size_t unable = 0;
  for (const auto& [conn, m] : cohort_) unable += (noised ? m.noised_histograms : m.accuracy_histograms) ? 0 : 1;
  if (unable == 0) return options_.evaluation_bins;
  const char* capability = noised ? round::kNoisedAccuracyHistogramCapability : round::kAccuracyHistogramCapability;
  report_.local_histogram_problem = std::to_string(unable) + " of the cohort's " + std::to_string(cohort_.size()) +
                                    " devices cannot add accuracy histograms" + (noised ? " under DP" : "") +
                                    " (their Hello does not name \"" + capability +
                                    "\": an older sotto-client); this round asked for none. Upgrade those devices";
  return 0;
}

// The sum's last 2·bins words are the survivors' accuracy histograms (ml/accuracy_histogram.h): into the report,
// and off the sum before it is decoded as an update.
void RoundCoordinator::read_histogram(SecureAggregationRound::Summed& summed, std::uint32_t bins) {
  const std::size_t at = summed.sum.size() - 2ull * bins;
  const std::uint32_t bits = secure_->assignment().config.bits;
  const std::uint32_t keep = bits >= 32 ? ~0u : (1u << bits) - 1;  // the sum is mod 2^bits
  std::vector<std::uint32_t> words(summed.sum.begin() + static_cast<std::ptrdiff_t>(at), summed.sum.end());
  for (auto& w : words) w &= keep;
  summed.sum.resize(at);
  if (charge_ && charge_->histogram) {  // noised: the counts as released, clamped to [0, survivors]
    report_.local_histogram = ml::noisy_accuracy_histogram(dp::signed_values(words, bits), bins, report_.survivors);
    const double share = dp::effective_local_stddev(charge_->histogram->local_stddev);
    report_.local_histogram_noise_stddev = share * std::sqrt(static_cast<double>(report_.survivors));
    return;
  }
  auto reading = ml::read_accuracy_histogram(words, bins, report_.survivors);
  report_.local_histogram = std::move(reading.histogram);
  report_.local_histogram_problem = std::move(reading.inconsistency);
}

// Adaptive clipping: the survivors' noised clipped-count bits (the decoded sum's last coordinate) move the clip norm
// for the next round (dp/adaptive_clipping.h).
void RoundCoordinator::adapt_clip_norm(double count) {
  const double fraction = dp::unclipped_fraction(count, charge_->count_weight, report_.survivors);
  clip_norm_ = dp::next_clip_norm(charge_->update_clip_norm, fraction, options_.privacy.adaptive_clipping,
                                  announced_clip_ceiling_);
  if (report_.privacy) {
    report_.privacy->unclipped_fraction = fraction;
    report_.privacy->next_clip_norm = clip_norm_;
  }
}

}  // namespace sotto::aggregator
