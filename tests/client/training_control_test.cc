#include "client/training_control.h"

#include <catch2/catch.hpp>
#include <thread>

using sotto::client::TrainingControl;

TEST_CASE("training control: batches run until stop and none starts after stop returns") {
  TrainingControl control;
  CHECK(control.next_batch());
  CHECK(control.next_batch());
  CHECK(control.batches_started() == 2);
  CHECK_FALSE(control.stop_reason());
  std::thread trainer([&] {
    while (control.next_batch()) {
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  control.stop("cancelled by the app");
  const auto started_when_stop_returned = control.batches_started();
  trainer.join();
  CHECK(control.batches_started() == started_when_stop_returned);
  CHECK_FALSE(control.next_batch());
  control.stop("a later reason");
  CHECK(control.stop_reason() == std::optional<std::string>("cancelled by the app"));
}

TEST_CASE("training control: the eligibility check is asked before every batch") {
  int asked = 0;
  bool charging = true;
  TrainingControl control([&]() -> std::optional<std::string> {
    ++asked;
    return charging ? std::nullopt : std::optional<std::string>("on battery");
  });
  CHECK(control.next_batch());
  CHECK(control.next_batch());
  charging = false;
  CHECK_FALSE(control.next_batch());
  CHECK(asked == 3);
  CHECK(control.batches_started() == 2);
  CHECK(control.stop_reason() == std::optional<std::string>("the device is no longer eligible: on battery"));
  charging = true;
  CHECK_FALSE(control.next_batch());  // stopped for good
}

TEST_CASE("training control: past the round's deadline no batch starts, with the cap as the reason") {
  TrainingControl control;
  control.stop_at(std::chrono::steady_clock::now() + std::chrono::hours(1), "the round took too long");
  CHECK(control.next_batch());
  control.stop_at(std::chrono::steady_clock::now(), "the round took too long");
  CHECK_FALSE(control.next_batch());
  CHECK(control.batches_started() == 1);
  CHECK(control.stop_reason() == std::optional<std::string>("the round took too long"));
}
