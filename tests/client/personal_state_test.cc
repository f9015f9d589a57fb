// The personal tensors a device keeps: in memory without a state store, sealed in it with one (surviving a reopen,
// refused under another key), and deleted with the rest of the person's data when consent is revoked.
#include "client/personal_state.h"

#include <catch2/catch.hpp>

#include "client/consent_gate.h"
#include "client/state_key.h"
#include "common/crypto/random.h"
#include "common/util/error.h"
#include "tests/support/test_support.h"

using namespace sotto;

namespace {

model::ModelParameters head(float value) {
  model::Tensor t{"head.bias", model::DType::kFloat32, {2}, std::vector<std::byte>(8)};
  for (float& v : t.as_mutable<float>()) v = value;
  return model::ModelParameters({t});
}

}  // namespace

TEST_CASE("personal state: kept in memory without a store", "[client][personal]") {
  client::PersonalState state(nullptr);
  CHECK(state.load().size() == 0);
  state.save(head(1.5f));
  CHECK(state.load() == head(1.5f));
  state.erase();
  CHECK(state.load().size() == 0);
}

TEST_CASE("personal state: sealed in the state store, reopened, and deleted when consent is revoked",
          "[client][personal]") {
  test::TempDir dir;
  const auto key = crypto::random_secret<client::kStateKeyBytes>();
  {
    client::StateStore store(dir.path(), key);
    client::PersonalState(&store).save(head(2.5f));
  }
  {
    client::StateStore store(dir.path(), key);
    CHECK(client::PersonalState(&store).load() == head(2.5f));
    client::delete_personal_data(store, client::OnRevoke::kKeepLedger);
    CHECK(client::PersonalState(&store).load().size() == 0);
  }
  CHECK_THROWS_AS(client::StateStore(dir.path(), crypto::random_secret<client::kStateKeyBytes>()), Error);
}
