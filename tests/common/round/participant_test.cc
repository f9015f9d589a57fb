// The participant's state machine without a network: plain and secure rounds end to end (the secure one against a
// real secagg::ServerSession), a fake randomness source giving exact quantized inputs, the task's deadline, a round
// abandoned at every step, divergence, and refusal of duplicate, out-of-order and foreign-round messages.
#include "common/round/participant.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <map>

#include "common/codec/model_digest.h"
#include "common/crypto/x25519.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/server_session.h"
#include "common/secagg/update_vector.h"
#include "tests/common/round/participant_fixtures.h"

namespace sotto::round {
namespace {

using namespace std::chrono_literals;

using namespace fixtures;

void require_refused(const Outputs& outputs, v1::ErrorCode code, const std::string& says) {
  REQUIRE(outputs.size() == 2);
  const auto& error = only<out::ReportError>(outputs, 0);
  CHECK(v1::ErrorCode_Name(error.code) == v1::ErrorCode_Name(code));
  CHECK_THAT(error.message, Catch::Contains(says));
  CHECK(only<out::Finish>(outputs, 1).outcome == out::Outcome::kFailed);
}

}  // namespace

TEST_CASE("a plain round: task, fit with the participant's seed, the exact delta uploaded, then the result",
          "[round][participant]") {
  FakeRandom random(7);
  Participant p({"client-1", std::nullopt}, random);
  const auto fit = only<out::Fit>(p.on_task(plain_task(), t0));
  CHECK(fit.round_id == 3);
  CHECK(*fit.global_model == weights({1, 2, 3, 4}));
  CHECK(fit.plan.seed == ml::client_training_seed(99, "client-1"));
  CHECK(p.deadline() == t0 + 10s);

  const auto upload = only<out::Upload>(p.on_fitted(fitted_local({1.5f, 2, 2, 4}), t0 + 1s));
  CHECK(upload.round_id == 3);
  CHECK(upload.metrics.num_examples == 10);
  CHECK(std::get<model::ModelParameters>(upload.payload) == weights({0.5f, 0, -1, 0}));
  CHECK_FALSE(p.deadline());
  CHECK(random.calls == 0);  // a plain round draws nothing

  const auto finish = only<out::Finish>(p.on_result({3, true, 5, true, "ok"}, t0 + 2s));
  CHECK(finish.outcome == out::Outcome::kCompleted);
  CHECK(finish.training_finished);
  CHECK(p.finished());
  CHECK(p.record().sent);
  CHECK(p.record().update_l2_norm == Approx(std::sqrt(1.25)));
}

TEST_CASE("a plain round with the plan's clip_norm sends the update clipped to it and records the bound",
          "[round][participant]") {
  FakeRandom random(7);
  Participant p({"client-1", std::nullopt}, random);
  Task task = plain_task();
  task.plan.clip_norm = 1.0;
  p.on_task(task, t0);
  // local - global = {3, 4, 0, 0}: norm 5, sent as {0.6, 0.8, 0, 0}.
  const auto upload = only<out::Upload>(p.on_fitted(fitted_local({4, 6, 3, 4}), t0 + 1s));
  const auto sent = std::get<model::ModelParameters>(upload.payload).find("w")->as<float>();
  CHECK(sent[0] == Approx(0.6));
  CHECK(sent[1] == Approx(0.8));
  CHECK(sent[2] == 0);
  CHECK(p.record().clip_norm == 1.0);
  CHECK(p.record().update_l2_norm == Approx(1.0));
}

TEST_CASE("the task's deadline ends the round if the update is not out by then", "[round][participant]") {
  FakeRandom random(7);
  SECTION("a tick at the deadline, while training") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(), t0);
    CHECK(p.on_tick(t0 + 9s).empty());
    CHECK(only<out::Finish>(p.on_tick(t0 + 10s)).outcome == out::Outcome::kDeadline);
    CHECK(p.on_result({3, true, 1, false, ""}, t0 + 11s).empty());  // over: ignored
  }
  SECTION("training that ends after the deadline sends nothing") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(), t0);
    const auto outputs = p.on_fitted(fitted_local({1, 2, 3, 4}), t0 + 11s);
    REQUIRE(outputs.size() == 1);
    CHECK(only<out::Finish>(outputs).outcome == out::Outcome::kDeadline);
  }
  SECTION("after the upload the deadline no longer applies") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(), t0);
    p.on_fitted(fitted_local({1, 2, 3, 4}), t0 + 1s);
    CHECK(p.on_tick(t0 + 1h).empty());
  }
}

TEST_CASE("a diverged update is not sent: the aggregator is told why", "[round][participant]") {
  FakeRandom random(7);
  Participant p({"c", std::nullopt}, random);
  p.on_task(plain_task(), t0);
  const auto outputs = p.on_fitted(fitted_local({1, std::nanf(""), 3, 4}), t0 + 1s);
  REQUIRE(outputs.size() == 2);
  CHECK(only<out::ReportError>(outputs, 0).code == v1::ERROR_CODE_INVALID_UPDATE);
  CHECK_THAT(only<out::ReportError>(outputs, 0).message, Catch::Contains("diverged") && Catch::Contains("'w'"));
  CHECK(only<out::Finish>(outputs, 1).outcome == out::Outcome::kDiverged);
  CHECK_FALSE(p.record().sent);
}

TEST_CASE("duplicate, out-of-order and foreign-round messages are refused, never thrown", "[round][participant]") {
  FakeRandom random(7);
  SECTION("a second task") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(), t0);
    require_refused(p.on_task(plain_task(), t0), v1::ERROR_CODE_UNEXPECTED_MESSAGE, "a task while this client was training");
  }
  SECTION("a key directory in a plain round") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(), t0);
    p.on_fitted(fitted_local({1, 2, 3, 4}), t0);
    require_refused(p.on_key_directory({}, t0), v1::ERROR_CODE_UNEXPECTED_MESSAGE, "key directory");
  }
  SECTION("an unmask request in a plain round") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(), t0);
    p.on_fitted(fitted_local({1, 2, 3, 4}), t0);
    require_refused(p.on_unmask_request({}, t0), v1::ERROR_CODE_UNEXPECTED_MESSAGE, "plain round");
  }
  SECTION("a result before the task") {
    Participant p({"c", std::nullopt}, random);
    require_refused(p.on_result({1, true, 1, false, ""}, t0), v1::ERROR_CODE_UNEXPECTED_MESSAGE, "before the task");
  }
  SECTION("the result of another round") {
    Participant p({"c", std::nullopt}, random);
    p.on_task(plain_task(3), t0);
    p.on_fitted(fitted_local({1, 2, 3, 4}), t0);
    require_refused(p.on_result({4, true, 1, false, ""}, t0), v1::ERROR_CODE_WRONG_ROUND, "round 4");
  }
  SECTION("after a refusal everything is ignored") {
    Participant p({"c", std::nullopt}, random);
    p.on_result({1, true, 1, false, ""}, t0);
    CHECK(p.on_task(plain_task(), t0).empty());
    CHECK(p.on_shares({}, t0).empty());
  }
}

TEST_CASE("a trainer cannot take a secure-sum task, nor a contributor a training task", "[round][participant]") {
  FakeRandom random(7);
  Participant trainer({"c", std::nullopt}, random);
  Task sum = plain_task();
  sum.kind = TaskKind::kSecureSum;
  const auto a = only<out::Finish>(trainer.on_task(sum, t0));
  CHECK(a.fatal);
  CHECK_THAT(a.message, Catch::Contains("--contribute"));
  Participant contributor({"c", std::vector<std::uint32_t>{1, 2}}, random);
  CHECK(only<out::Finish>(contributor.on_task(plain_task(), t0)).fatal);
}

namespace {

// n participants against a real ServerSession. `abandon_after` ends the round for everyone after that many steps
// (0: right after training ... 4: after unmasking) by handing them an abandoned result instead of the next message.
struct SecureRound {
  static constexpr std::uint32_t n = 3;
  secagg::RoundConfig config{5, n, 2, 2, 4, 32};
  std::vector<FakeRandom> randoms{FakeRandom(16), FakeRandom(32), FakeRandom(48)};  // no key repeats across them
  std::vector<Participant> participants;
  secagg::ServerSession server{config};

  SecureRound() {
    for (std::uint32_t i = 0; i < n; ++i) participants.emplace_back(ParticipantOptions{"c" + std::to_string(i), {}}, randoms[i]);
  }

  Task task(std::uint32_t i) const {
    Task t = plain_task(5);
    t.secure = SecureAssignment{config, i, 10.0};
    return t;
  }
};

std::vector<float> delta_of(std::uint32_t i) { return {0.25f * (i + 1), -0.5f, 0.125f, 1.0f}; }

}  // namespace

TEST_CASE("a secure round: each participant's quantized input follows from its random source exactly, and the "
          "server recovers their sum",
          "[round][participant][secagg]") {
  SecureRound r;
  for (std::uint32_t i = 0; i < r.n; ++i) {
    only<out::Fit>(r.participants[i].on_task(r.task(i), t0));
    std::vector<float> local = {1, 2, 3, 4};
    for (std::size_t j = 0; j < 4; ++j) local[j] += delta_of(i)[j];
    const auto keys = only<out::AdvertiseKeys>(r.participants[i].on_fitted(fitted_local(local), t0));
    r.server.on_advertise(i, keys.keys);
  }
  const auto directories = r.server.close_advertise();
  for (std::uint32_t i = 0; i < r.n; ++i) {
    r.server.on_encrypted_shares(
        i, {only<out::ShareKeys>(r.participants[i].on_key_directory(directories.at(i), t0)).shares});
  }
  auto shares = r.server.close_share_keys();
  for (std::uint32_t i = 0; i < r.n; ++i) {
    const auto upload = only<out::Upload>(r.participants[i].on_shares(shares[i], t0));
    CHECK(upload.bits == 32);
    r.server.on_masked_input(i, std::get<secagg::MaskedInput>(upload.payload));
  }
  auto requests = r.server.close_masked_input();
  for (std::uint32_t i = 0; i < r.n; ++i) {
    r.server.on_unmask_response(i, only<out::UnmaskResponse>(r.participants[i].on_unmask_request(requests[i], t0)).response);
  }
  const secagg::AggregationResult result = r.server.close_unmasking();

  // The same quantizer with the seeds the fake sources gave: the sum matches to the last bit.
  const secagg::Quantizer quantizer({10.0, r.n, 32});
  std::vector<std::uint32_t> expected(4, 0);
  for (std::uint32_t i = 0; i < r.n; ++i) {
    const std::vector<float> d = delta_of(i);
    const auto x = quantizer.encode_with_coin_seed(d, std::vector<std::uint8_t>(32, static_cast<std::uint8_t>(16 * (i + 1))));
    for (std::size_t j = 0; j < 4; ++j) expected[j] += x[j];
  }
  CHECK(result.sum == expected);
  for (std::uint32_t i = 0; i < r.n; ++i) {
    CHECK(r.randoms[i].calls == 5);  // coins, the mask key, a channel key per neighbour (2), the self-mask seed
    CHECK(only<out::Finish>(r.participants[i].on_result({5, true, 3, false, ""}, t0)).outcome ==
          out::Outcome::kCompleted);
    CHECK(r.participants[i].record().secure);
    CHECK(r.participants[i].record().clip_norm == 10.0);
  }
}

TEST_CASE("a secure participant's keys come from its random source: the same source gives the same keys",
          "[round][participant][secagg]") {
  SecureRound r;
  FakeRandom again(16);
  Participant twin({"c0", {}}, again);
  std::vector<float> local = {1.25f, 1.5f, 3.125f, 5};
  only<out::Fit>(r.participants[0].on_task(r.task(0), t0));
  only<out::Fit>(twin.on_task(r.task(0), t0));
  const auto a = only<out::AdvertiseKeys>(r.participants[0].on_fitted(fitted_local(local), t0)).keys;
  const auto b = only<out::AdvertiseKeys>(twin.on_fitted(fitted_local(local), t0)).keys;
  CHECK(a.channel_public == b.channel_public);
  CHECK(a.mask_public == b.mask_public);
  REQUIRE(a.channel_public.size() == 2);  // one per neighbour: k = 2
  std::array<std::uint8_t, 32> mask_private{}, first_channel_private{};
  mask_private.fill(17);           // the second draw (the first is the rounding coins)
  first_channel_private.fill(18);  // the third: the channel key for the lowest neighbour
  CHECK(crypto::X25519KeyPair::from_private_bytes(mask_private).public_key() == a.mask_public);
  CHECK(crypto::X25519KeyPair::from_private_bytes(first_channel_private).public_key() ==
        a.channel_public.begin()->second);
}

TEST_CASE("a secure round abandoned at any step ends each participant's round as abandoned", "[round][participant][secagg]") {
  for (int abandon_after = 0; abandon_after <= 4; ++abandon_after) {
    INFO("abandoned after " << abandon_after << " steps");
    SecureRound r;
    for (std::uint32_t i = 0; i < r.n; ++i) {
      r.participants[i].on_task(r.task(i), t0);
      if (abandon_after >= 1) {
        r.server.on_advertise(i, only<out::AdvertiseKeys>(r.participants[i].on_fitted(fitted_local({1, 2, 3, 4}), t0)).keys);
      }
    }
    if (abandon_after >= 2) {
      const auto directories = r.server.close_advertise();
      for (std::uint32_t i = 0; i < r.n; ++i) {
        r.server.on_encrypted_shares(
            i, {only<out::ShareKeys>(r.participants[i].on_key_directory(directories.at(i), t0)).shares});
      }
    }
    if (abandon_after >= 3) {
      auto shares = r.server.close_share_keys();
      for (std::uint32_t i = 0; i < r.n; ++i) {
        r.server.on_masked_input(i, std::get<secagg::MaskedInput>(only<out::Upload>(r.participants[i].on_shares(shares[i], t0)).payload));
      }
    }
    if (abandon_after >= 4) {
      auto requests = r.server.close_masked_input();
      for (std::uint32_t i = 0; i < r.n; ++i) only<out::UnmaskResponse>(r.participants[i].on_unmask_request(requests[i], t0));
    }
    for (auto& p : r.participants) {
      const auto finish = only<out::Finish>(p.on_result({5, false, 0, false, "too few clients"}, t0 + 1s));
      CHECK(finish.outcome == out::Outcome::kAbandoned);
      CHECK(finish.message == "too few clients");
      CHECK(p.finished());
    }
  }
}

TEST_CASE("a key directory the session refuses ends the round with an error report, not an exception",
          "[round][participant][secagg]") {
  SecureRound r;
  r.participants[0].on_task(r.task(0), t0);
  r.participants[0].on_fitted(fitted_local({1, 2, 3, 4}), t0);
  secagg::KeyDirectory empty;  // none of its neighbours' keys, fewer than t
  require_refused(r.participants[0].on_key_directory(empty, t0), v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                  "secure aggregation");
}

TEST_CASE("the participant trains only on the model whose SHA-256 its task names", "[round][participant]") {
  FakeRandom random(7);
  Task task = plain_task();
  task.model_sha256 = codec::model_digest(*task.global_model);
  Participant good({"c", std::nullopt}, random);
  only<out::Fit>(good.on_task(task, t0));

  task.model_sha256->at(0) ^= 1;
  Participant bad({"c", std::nullopt}, random);
  require_refused(bad.on_task(task, t0), v1::ERROR_CODE_MALFORMED_FRAME, "does not match the SHA-256");
}

TEST_CASE("a device refuses a round whose model carries a tensor it keeps personal, and sends nothing else",
          "[round][participant][personal]") {
  FakeRandom random(7);
  ParticipantOptions options{"client-1", std::nullopt};
  options.personal = model::PersonalTensors({"head.*", "w"});
  Participant p(std::move(options), random);
  const auto outputs = p.on_task(plain_task(), t0);  // its global model has tensor "w"
  REQUIRE(outputs.size() == 2);
  const auto& error = only<out::ReportError>(outputs, 0);
  CHECK(v1::ErrorCode_Name(error.code) == v1::ErrorCode_Name(v1::ERROR_CODE_PRIVACY_REFUSED));
  CHECK_THAT(error.message, Catch::Contains("tensor 'w'") && Catch::Contains("\"head.*\", \"w\""));
  CHECK(only<out::Finish>(outputs, 1).outcome == out::Outcome::kRefused);
  CHECK(p.finished());

  // Patterns that name none of the global model's tensors take part as usual.
  ParticipantOptions other{"client-1", std::nullopt};
  other.personal = model::PersonalTensors({"head.*"});
  Participant q(std::move(other), random);
  CHECK(std::holds_alternative<out::Fit>(q.on_task(plain_task(), t0).at(0)));
}

TEST_CASE("the device's held-out accuracies go with the update only where it reports them", "[round][participant][personal]") {
  FakeRandom random(7);
  for (const bool report : {true, false}) {
    ParticipantOptions options{"client-1", std::nullopt};
    options.report_local_evaluation = report;
    Participant p(std::move(options), random);
    p.on_task(plain_task(), t0);
    Fitted fitted = fitted_local({1.5f, 2, 2, 4});
    fitted.local_evaluation = ml::LocalEvaluation{30, 0.5, 0.75};
    const auto upload = only<out::Upload>(p.on_fitted(std::move(fitted), t0 + 1s));
    CHECK(upload.local_evaluation.has_value() == report);
    if (report) CHECK(upload.local_evaluation->personal_accuracy == 0.75);
  }
}

}  // namespace sotto::round
