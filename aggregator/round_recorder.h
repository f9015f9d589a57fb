// RoundRecorder: what the aggregator does with a round once it has closed, and with its start. On its one worker
// thread (never the event loop) it prepares the start — the checkpoint, or the initial model, which loads
// LibTorch — and evaluates each completed round's model. On the caller's thread it writes the checkpoint as the
// round closes (before the next round can start), and once evaluation is done it appends the round's line to
// rounds.jsonl and tells the caller, who then opens the next round.
#pragma once

#include <exception>
#include <filesystem>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "aggregator/checkpoint_store.h"
#include "aggregator/privacy_journal.h"
#include "aggregator/round_coordinator.h"
#include "aggregator/round_log.h"
#include "common/ml/training_plan.h"

namespace sotto::aggregator {

// Evaluates a global model on the test set; called on the recorder's worker thread.
using Evaluator = std::function<ml::EvalMetrics(const model::ModelParameters&)>;
// Builds the initial global model when there is no checkpoint.
using ModelFactory = std::function<model::ModelParameters()>;

class RoundRecorder {
 public:
  // `evaluator` may be empty (no evaluation). Callbacks run on `io`.
  RoundRecorder(boost::asio::io_context& io, CheckpointStoreOptions checkpoints, std::filesystem::path rounds_file,
                Evaluator evaluator);
  ~RoundRecorder();

  using StartReady = std::function<void(CoordinatorStart start, std::exception_ptr error)>;
  // Loads the checkpoint, or builds and writes the initial model, on the worker thread; `ready` gets the start
  // or what went wrong.
  void prepare_start(ModelFactory factory, StartReady ready);

  // Writes the checkpoint now; evaluates (when `evaluate` and the round completed), logs, then calls `recorded`.
  void record(const action::RoundClosed& closed, const RoundTraffic& traffic, bool evaluate,
              std::function<void()> recorded);

  // Writes a round's privacy charge to <state_dir>/privacy.jsonl and fsyncs it, on the calling thread; throws
  // sotto::Error when it cannot (nothing after it may go out).
  void debit_privacy(const RoundCharge& charge, const PrivacyOptions& options, std::uint32_t honest);

  // Rounds closed whose line is not yet in rounds.jsonl.
  int pending() const { return pending_; }
  // Waits for the worker thread to finish what it was given.
  void join();

 private:
  void restore_lost_record();

  boost::asio::io_context& io_;
  CheckpointStore checkpoints_;
  std::filesystem::path rounds_file_;
  PrivacyJournal journal_;
  Evaluator evaluator_;
  std::unique_ptr<RoundLog> log_;  // opened once the start is ready
  boost::asio::thread_pool worker_{1};
  int pending_ = 0;
};

}  // namespace sotto::aggregator
