#include "simulations/training_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <thread>
#include <mutex>

#include "common/round/message_codec.h"
#include "common/round/participant.h"
#include "common/util/error.h"

namespace sotto::sim {

namespace {

// A plain round draws no randomness; asking for some is a bug.
class NoRandomness final : public round::RandomSource {
 public:
  void fill(std::span<std::uint8_t>) override {
    throw Error("internal: a plain round's participant asked for randomness");
  }
};

}  // namespace

aggregator::UpdateSummary summary_of(const round::out::Upload& upload) {
  const ml::TrainMetrics& m = upload.metrics;
  return {upload.round_id, m.num_examples, m.mean_loss, m.accuracy, m.seconds, upload.local_evaluation};
}

aggregator::ClientUpdate to_client_update(round::out::Upload upload) {
  aggregator::ClientUpdate update;
  static_cast<aggregator::UpdateSummary&>(update) = summary_of(upload);
  update.delta = round::upload_payload(std::move(upload));
  return update;
}

TrainingPool::TrainingPool(std::uint32_t threads, const ml::ModelSpec& model, std::uint64_t init_seed,
                           std::shared_ptr<const data::ImageDataset> train)
    : train_(std::move(train)) {
  if (threads == 0) throw Error("the training pool needs at least one thread");
  if (threads > 1) {
    if (auto hazard = ml::concurrent_training_hazard()) {
      throw Error("threads = " + std::to_string(threads) + " is unsafe here: " + *hazard +
                  ". Install libopenblas0-pthread (scripts/install-deps.sh does), or set threads = 1");
    }
  }
  for (std::uint32_t i = 0; i < threads; ++i) models_.push_back(ml::make_model(model, init_seed));
  initial_ = models_.front()->parameters();
}

std::vector<ClientState*> TrainingPool::states_of(const std::vector<TrainingJob>& jobs, bool create) {
  std::vector<ClientState*> states;
  states.reserve(jobs.size());
  for (const auto& job : jobs) {
    if (create) {
      states.push_back(&states_.of(job.client));
    } else {
      ClientState* state = states_.find(job.client);
      states.push_back(state ? state : &untrained_);
    }
  }
  return states;
}

void TrainingPool::run_workers(std::size_t count, const std::function<void(ml::ImageModel&)>& prepare,
                               const std::function<void(ml::ImageModel&, std::size_t)>& task,
                               const std::function<void(std::size_t)>& finished) {
  std::atomic<std::size_t> next{0};
  std::vector<std::atomic<bool>> done(finished ? count : 0);
  std::size_t handed = 0;  // tasks passed to `finished` so far (calling thread only)
  std::mutex mutex;        // guards failure; with `progress`, wakes the calling thread when a task is done
  std::condition_variable progress;
  std::exception_ptr failure;
  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard lock(mutex);
      if (!failure) failure = e;
    }
    next = count;  // no more tasks are claimed
    progress.notify_all();
  };
  // Calling thread: hands over every task done in index order so far.
  auto hand_over_done = [&] {
    try {
      while (handed < count && done[handed].load(std::memory_order_acquire)) finished(handed++);
    } catch (...) {
      fail(std::current_exception());
      handed = count;
    }
  };
  auto work = [&](ml::ImageModel& model, bool calling_thread) {
    ml::set_torch_threads(1);
    try {
      if (prepare) prepare(model);
      for (std::size_t i = next++; i < count; i = next++) {
        task(model, i);
        if (!finished) continue;
        done[i].store(true, std::memory_order_release);
        if (calling_thread) {
          hand_over_done();
        } else {
          { std::lock_guard lock(mutex); }  // the calling thread is checking or waiting, not between the two
          progress.notify_one();
        }
      }
    } catch (...) {
      fail(std::current_exception());
    }
  };
  const std::size_t n_workers = std::min(models_.size(), std::max<std::size_t>(count, 1));
  std::vector<std::thread> workers;
  for (std::size_t w = 1; w < n_workers; ++w) workers.emplace_back(work, std::ref(*models_[w]), false);
  work(*models_[0], true);  // the calling thread is the first worker
  if (finished) {
    // The calling thread has no more tasks to claim: it hands over the others' as they finish.
    std::unique_lock lock(mutex);
    while (handed < count && !failure) {
      progress.wait(lock, [&] { return failure || done[handed].load(std::memory_order_acquire); });
      if (failure) break;
      lock.unlock();
      hand_over_done();
      lock.lock();
    }
  }
  for (auto& t : workers) t.join();
  if (failure) std::rethrow_exception(failure);
}

void TrainingPool::train(const std::vector<TrainingJob>& jobs, std::uint64_t round_id,
                         const model::ModelParameters& global, const ml::TrainingPlan& plan, const OutcomeSink& sink) {
  std::vector<TrainingOutcome> out(jobs.size());
  round::Task task;
  task.round_id = round_id;
  task.plan = plan;
  task.global_model = std::shared_ptr<const model::ModelParameters>(std::shared_ptr<const void>(), &global);  // not owned
  const bool personalizes = !plan.personal.empty() || plan.adapts() ||
                            std::any_of(jobs.begin(), jobs.end(), [](const auto& j) { return !j.local_test.empty(); });
  const std::vector<ClientState*> states = personalizes ? states_of(jobs) : std::vector<ClientState*>();
  run_workers(
      jobs.size(), {},
      [&](ml::ImageModel& model, std::size_t i) {
        const TrainingJob& job = jobs[i];
        TrainingOutcome& o = out[i];
        o.client = job.client;
        try {
          NoRandomness no_randomness;
          round::ParticipantOptions options{Population::client_id(job.client), std::nullopt};
          options.report_local_evaluation = true;  // what it measured on its held-out examples, if any
          round::Participant participant(std::move(options), no_randomness);
          const round::Outputs asked = participant.on_task(task, round::Clock::now());
          const auto* fit = std::get_if<round::out::Fit>(&asked.front());
          if (!fit) throw Error("internal: the participant did not ask for training");
          if (job.examples.empty()) throw Error("the client holds no training examples");
          round::Fitted fitted;
          if (personalizes) {
            fitted = fit_with_state(model, data_of(job), global, initial_, fit->plan, *states[i]);
          } else {
            model.load(global);
            fitted.metrics = model.train(*train_, job.examples, fit->plan);
            fitted.delta = model.delta_from(global);
          }
          o.compute_seconds = fitted.metrics.compute_seconds;
          for (auto& output : participant.on_fitted(std::move(fitted), round::Clock::now())) {
            if (auto* upload = std::get_if<round::out::Upload>(&output)) o.update = to_client_update(std::move(*upload));
            if (const auto* error = std::get_if<round::out::ReportError>(&output)) throw Error(error->message);
          }
          if (!o.update) throw Error("internal: the participant sent no update");
        } catch (const std::exception& e) {
          o.update.reset();
          o.error = e.what();
        }
      },
      [&](std::size_t i) { sink(std::move(out[i])); });
}

std::vector<TrainingOutcome> TrainingPool::train(const std::vector<TrainingJob>& jobs, std::uint64_t round_id,
                                                  const model::ModelParameters& global,
                                                  const ml::TrainingPlan& plan) {
  std::vector<TrainingOutcome> out;
  out.reserve(jobs.size());
  train(jobs, round_id, global, plan, [&](TrainingOutcome&& o) { out.push_back(std::move(o)); });
  return out;
}

std::vector<ml::LocalEvaluation> TrainingPool::measure_each(const std::vector<TrainingJob>& jobs,
                                                            const ml::TrainingPlan& plan, bool trains,
                                                            const ClientMeasure& measure) {
  std::vector<ml::LocalEvaluation> out(jobs.size());
  const std::vector<ClientState*> states = states_of(jobs, trains);
  run_workers(jobs.size(), {}, [&](ml::ImageModel& model, std::size_t i) {
    ml::TrainingPlan own = plan;
    own.seed = ml::client_training_seed(plan.seed, Population::client_id(jobs[i].client));
    out[i] = measure(model, data_of(jobs[i]), own, *states[i]);
  });
  return out;
}

std::vector<ml::LocalEvaluation> TrainingPool::train_alone(const std::vector<TrainingJob>& jobs,
                                                           const ml::TrainingPlan& plan) {
  return measure_each(jobs, plan, true, [&](ml::ImageModel& model, const ClientData& data,
                                            const ml::TrainingPlan& own, ClientState& state) {
    if (data.examples.empty()) throw Error("a virtual client of the local-only run holds no training examples");
    return sim::train_alone(model, data, initial_, own, state);
  });
}

std::vector<ml::LocalEvaluation> TrainingPool::evaluate_clients(const std::vector<TrainingJob>& jobs,
                                                                const model::ModelParameters* global,
                                                                const ml::TrainingPlan& plan) {
  return measure_each(jobs, plan, false, [&](ml::ImageModel& model, const ClientData& data,
                                             const ml::TrainingPlan& own, ClientState& state) {
    return evaluate_client(model, data, global, initial_, own, state);
  });
}

ml::EvalMetrics TrainingPool::evaluate(const model::ModelParameters& global, const data::ImageDataset& test,
                                       std::uint64_t max_examples) {
  const std::size_t n = max_examples == 0 ? test.size() : std::min<std::size_t>(max_examples, test.size());
  constexpr std::size_t kChunk = 2 * ml::kEvalBatch;  // a multiple of the batch: the same batches as one model
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::vector<ml::EvalBatch>> results(chunks);
  run_workers(
      chunks, [&](ml::ImageModel& model) { model.load(global); },
      [&](ml::ImageModel& model, std::size_t c) {
        results[c] = model.evaluate_batches(test, c * kChunk, std::min(n, (c + 1) * kChunk));
      });
  std::vector<ml::EvalBatch> all;
  for (auto& r : results) all.insert(all.end(), r.begin(), r.end());
  return ml::combine_batches(all);
}

}  // namespace sotto::sim
