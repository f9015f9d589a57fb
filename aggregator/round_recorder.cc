#include "aggregator/round_recorder.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <boost/asio/post.hpp>

#include "common/util/json_lines.h"

namespace sotto::aggregator {

namespace asio = boost::asio;

namespace {

void log_outcome(const RoundReport& report) {
  if (report.completed) {
    spdlog::info("round {} completed: {} of {} clients, {} examples, mean train loss {:.4f}", report.round_id,
                 report.survivors, report.cohort, report.examples, report.mean_train_loss);
  } else {
    spdlog::warn("round {} abandoned: {}; the global model is unchanged", report.round_id, report.abandon_reason);
  }
  for (const auto& [client, reason] : report.dropped) {
    spdlog::info("round {}: dropped {}: {}", report.round_id, client, reason);
  }
  if (report.secagg) {
    for (const auto& c : report.secagg->convicted) {
      spdlog::warn("round {}: secure aggregation: client '{}' convicted on '{}''s accusation: {}{}", report.round_id,
                   c.client, c.accused_by, c.offence, c.input_counted ? " (its input stays in this round's sum)" : "");
    }
  }
}

}  // namespace

RoundRecorder::RoundRecorder(asio::io_context& io, CheckpointStoreOptions checkpoints,
                             std::filesystem::path rounds_file, Evaluator evaluator)
    : io_(io),
      checkpoints_(std::move(checkpoints)),
      rounds_file_(std::move(rounds_file)),
      journal_(rounds_file_.parent_path() / "privacy.jsonl"),
      evaluator_(std::move(evaluator)) {}

void RoundRecorder::debit_privacy(const RoundCharge& charge, const PrivacyOptions& options, std::uint32_t honest) {
  journal_.append(charge, options, honest);
  spdlog::info("round {}: privacy debited before unmasking: epsilon spent {:.4g} at delta {:.3g} (journal {})",
               charge.round_id, charge.epsilon.epsilon, options.delta, journal_.path().string());
}

RoundRecorder::~RoundRecorder() {
  worker_.join();
}

void RoundRecorder::join() {
  worker_.join();
}

void RoundRecorder::prepare_start(ModelFactory factory, StartReady ready) {
  asio::post(worker_, [this, factory = std::move(factory), ready = std::move(ready)] {
    auto start = std::make_shared<CoordinatorStart>();
    std::exception_ptr error;
    try {
      *start = checkpoints_.load_or_create(factory());
      start->privacy_rdp = journal_.load(dp::default_orders().size(), start->privacy_rdp);
    } catch (...) {
      error = std::current_exception();
    }
    asio::post(io_, [this, start, error, ready] {
      std::exception_ptr failure = error;
      if (!failure) {
        try {
          restore_lost_record();
          log_ = std::make_unique<RoundLog>(rounds_file_);
        } catch (...) {
          failure = std::current_exception();
        }
      }
      ready(std::move(*start), failure);
    });
  });
}

// A crash after a checkpoint was written but before its round's line was appended: the checkpoint carries the
// line, which goes into rounds.jsonl now (without the evaluation that never ran, and marked as restored).
void RoundRecorder::restore_lost_record() {
  if (checkpoints_.carried_record().empty()) return;
  nlohmann::json carried = nlohmann::json::parse(checkpoints_.carried_record());
  const auto lines = util::read_json_lines(rounds_file_);
  const std::uint64_t round = carried.value("round", std::uint64_t{0});
  for (const auto& line : lines) {
    if (line.value("round", std::uint64_t{0}) == round) return;  // it made it
  }
  carried["restored_from_checkpoint"] = true;
  RoundLog(rounds_file_).append(carried);
  spdlog::warn("round {}: its rounds.jsonl line was lost in a crash; appended it from the checkpoint", round);
}

void RoundRecorder::record(const action::RoundClosed& rc, const RoundTraffic& traffic, bool evaluate,
                           std::function<void()> recorded) {
  // The record goes into the checkpoint too, so that a crash before its line is appended cannot lose it.
  checkpoints_.save(rc, round_record(rc.report, rc.completed_rounds, traffic, std::nullopt, 0).dump());
  log_outcome(rc.report);
  ++pending_;
  evaluate = evaluate && rc.report.completed && evaluator_;
  asio::post(worker_, [this, rc, traffic, evaluate, recorded = std::move(recorded)] {
    std::optional<ml::EvalMetrics> metrics;
    double seconds = 0;
    if (evaluate) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        metrics = evaluator_(*rc.global_model);
      } catch (const std::exception& e) {
        spdlog::error("round {}: evaluation failed: {}", rc.report.round_id, e.what());
      }
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    asio::post(io_, [this, rc, traffic, metrics, seconds, recorded] {
      log_->append(round_record(rc.report, rc.completed_rounds, traffic, metrics, seconds));
      if (metrics) {
        spdlog::info("round {}: test accuracy {:.4f}, test loss {:.4f} ({} examples)", rc.report.round_id,
                     metrics->accuracy, metrics->loss, metrics->num_examples);
      }
      --pending_;
      recorded();
    });
  });
}

}  // namespace sotto::aggregator
