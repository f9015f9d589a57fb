#include "simulations/training_pool.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <thread>
#include <mutex>

#include "common/util/error.h"

namespace sotto::sim {

TrainingPool::TrainingPool(std::uint32_t threads, const std::string& architecture, std::uint64_t init_seed,
                           std::shared_ptr<const data::ImageDataset> train)
    : train_(std::move(train)) {
  if (threads == 0) throw Error("the training pool needs at least one thread");
  if (threads > 1) {
    if (auto hazard = ml::concurrent_training_hazard()) {
      throw Error("threads = " + std::to_string(threads) + " is unsafe here: " + *hazard +
                  ". Install libopenblas0-pthread (scripts/install-deps.sh does), or set threads = 1");
    }
  }
  for (std::uint32_t i = 0; i < threads; ++i) models_.push_back(ml::make_image_model(architecture, init_seed));
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
  run_workers(
      jobs.size(), {},
      [&](ml::ImageModel& model, std::size_t i) {
        const TrainingJob& job = jobs[i];
        TrainingOutcome& o = out[i];
        o.client = job.client;
        try {
          if (job.examples.empty()) throw Error("the client holds no training examples");
          ml::TrainingPlan p = plan;
          p.seed = ml::client_training_seed(plan.seed, Population::client_id(job.client));
          model.load(global);
          const ml::TrainMetrics m = model.train(*train_, job.examples, p);
          model::ModelParameters delta = model.delta_from(global);
          if (auto bad = delta.first_non_finite()) throw Error("local training diverged: " + *bad);
          aggregator::ClientUpdate u;
          u.round_id = round_id;
          u.num_examples = m.num_examples;
          u.train_loss = m.mean_loss;
          u.train_accuracy = m.accuracy;
          u.train_seconds = m.seconds;
          o.compute_seconds = m.compute_seconds;
          u.delta = std::move(delta);
          o.update = std::move(u);
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
