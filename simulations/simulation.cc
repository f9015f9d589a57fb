#include "simulations/simulation.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>

#include "aggregator/round_coordinator.h"
#include "aggregator/round_log.h"
#include "aggregator/strategy_factory.h"
#include "common/codec/model_file.h"
#include "common/data/image_dataset.h"
#include "common/data/partition.h"
#include "common/ml/image_model.h"
#include "common/model/personal_tensors.h"
#include "common/util/error.h"
#include "simulations/canaries.h"
#include "simulations/cohort_sampler.h"
#include "simulations/distributed_training.h"
#include "simulations/local_measures.h"
#include "simulations/plots.h"
#include "simulations/population.h"
#include "simulations/secure_round.h"
#include "simulations/training_pool.h"

namespace sotto::sim {

namespace {

using WallClock = std::chrono::steady_clock;

double since(WallClock::time_point t0) {
  return std::chrono::duration<double>(WallClock::now() - t0).count();
}

// The coordinator's clock: wall time plus the simulated jumps (over a check-in window).
class SimClock {
 public:
  aggregator::TimePoint now() const { return aggregator::Clock::now() + offset_; }
  void advance(aggregator::Duration d) { offset_ += d; }

 private:
  aggregator::Duration offset_{};
};

template <typename T>
std::vector<T> take_all(aggregator::Actions& actions) {
  std::vector<T> out;
  for (auto& a : actions) {
    if (auto* x = std::get_if<T>(&a)) out.push_back(std::move(*x));
  }
  return out;
}

void append(aggregator::Actions& into, aggregator::Actions more) {
  for (auto& a : more) into.push_back(std::move(a));
}

// An in-process client is never refused in this engine; if the coordinator says otherwise it is a bug here.
void check_no_refusal(const aggregator::Actions& actions) {
  for (const auto& a : actions) {
    if (const auto* r = std::get_if<aggregator::action::RetryLater>(&a)) {
      throw Error("internal: the coordinator told virtual client " + std::to_string(r->conn) +
                  " to retry later: " + r->reason);
    }
    if (const auto* r = std::get_if<aggregator::action::Reject>(&a)) {
      throw Error("internal: the coordinator rejected virtual client " + std::to_string(r->conn) + ": " +
                  r->message);
    }
  }
}

}  // namespace

nlohmann::json SimSummary::to_json() const {
  return {{"rounds", rounds},
          {"final_accuracy", final_accuracy},
          {"final_loss", final_loss},
          {"best_accuracy", best_accuracy},
          {"best_round", best_round},
          {"total_seconds", total_seconds},
          {"empty_draws", empty_draws},
          {"small_draws", small_draws},
          {"stopped_by_budget", stopped_by_budget.empty() ? nlohmann::json() : nlohmann::json(stopped_by_budget)}};
}

void run_simulation_worker(const SimConfig& config, const MpiCluster& cluster) {
  ml::set_torch_threads(1);
  auto train = std::make_shared<const data::ImageDataset>(data::load_fashion_mnist(config.data_dir, data::Split::kTrain));
  const Population population(config, *train);
  TrainingPool pool(config.threads, config.model, config.init_seed, train);
  DistributedTrainer(cluster, pool, population).serve();
}

void SimSummary::note_round(const RoundRow& row) {
  rounds = row.completed_rounds;
  final_accuracy = row.test_accuracy;
  final_loss = row.test_loss;
  if (row.test_accuracy > best_accuracy || best_round == 0) {
    best_accuracy = row.test_accuracy;
    best_round = row.round;
  }
}

// A canary's update for this round: clip_norm times its direction, one example, no loss.
TrainingOutcome canary_outcome(const SimConfig& config, ClientIndex client, std::uint64_t round_id,
                               const model::ModelParameters& global) {
  TrainingOutcome o;
  o.client = client;
  aggregator::ClientUpdate update;
  update.round_id = round_id;
  update.num_examples = 1;
  update.delta = canary_update(config.canaries, client - config.population, config.clip_norm, global);
  o.update = std::move(update);
  return o;
}

// The canaries' cosines (canaries.csv: one row per direction) and the empirical epsilon beside the accountant's.
nlohmann::json canary_report(const SimConfig& config, const model::ModelParameters& initial,
                             const model::ModelParameters& final_model, const std::vector<std::uint64_t>& sends,
                             const std::filesystem::path& csv) {
  const CanaryCosines cosines = canary_cosines(config.canaries, initial, final_model);
  std::ofstream out(csv);
  out << "canary,inserted,rounds_sent,cosine\n";
  for (std::size_t k = 0; k < cosines.inserted.size(); ++k) {
    out << k << ",1," << sends[k] << "," << cosines.inserted[k] << "\n";
  }
  for (std::size_t k = 0; k < cosines.held_out.size(); ++k) {
    out << cosines.inserted.size() + k << ",0,0," << cosines.held_out[k] << "\n";
  }
  const double delta = config.privacy.delta;
  const CanaryEstimate e = estimate_epsilon(cosines, delta);
  return {{"inserted", cosines.inserted.size()}, {"held_out", cosines.held_out.size()},
          {"inserted_cosine_mean", e.inserted_mean}, {"inserted_cosine_stddev", e.inserted_stddev},
          {"held_out_cosine_mean", e.held_out_mean}, {"held_out_cosine_stddev", e.held_out_stddev},
          {"epsilon_empirical", e.epsilon}, {"delta", delta},
          {"method", "Andrew et al. 2024: Gaussians fitted to the final model change's cosines with the inserted "
                     "and the held-out canary directions"}};
}

void finish_outputs(RunOutputs& outputs, const SimConfig& config, SimSummary& summary,
                    const nlohmann::json& extra, const std::function<void(const std::string&)>& warn) {
  nlohmann::json s = summary.to_json();
  s["population"] = config.population;
  s["cohort_size"] = config.cohort_size;
  s["strategy"] = config.strategy.name;
  s["partition"] = config.partition;
  s.update(extra);
  outputs.write_summary(s);
  if (config.plots) {
    if (auto w = draw_plots(outputs.dir(), config.method() + ", " + config.partition, config.local_fraction > 0)) {
      if (warn) warn(*w);
    }
  }
}

SimSummary run_simulation(const SimConfig& config, const ProgressFn& progress,
                          const std::function<void(const std::string&)>& warn, const MpiCluster& cluster) {
  if (cluster.size() > 1 && config.personalizes()) {
    throw Error("personalization and evaluation.local_fraction run in one process: each client's state lives where "
                "it trains, and MPI ranks train different clients each round; run without mpirun");
  }
  if (config.local_only) return run_local_only(config, progress, warn);
  const auto start = WallClock::now();
  ml::set_torch_threads(1);
  RunOutputs outputs(config.output_dir, to_toml(config));

  auto train = std::make_shared<const data::ImageDataset>(data::load_fashion_mnist(config.data_dir, data::Split::kTrain));
  const data::ImageDataset test = data::load_fashion_mnist(config.data_dir, data::Split::kTest);
  const Population population(config, *train);
  data::write_partition_report(outputs.dir() / "partition.csv", population.shards(), train->labels);

  const auto initial_model = ml::make_model(config.model, config.init_seed);
  TrainingPool pool(config.threads, config.model, config.init_seed, train);
  DistributedTrainer trainer(cluster, pool, population);

  aggregator::CoordinatorOptions options;
  options.total_rounds = config.rounds;
  options.cohort_target =
      config.sampling == Sampling::kUniform
          ? config.cohort_size
          : static_cast<std::uint32_t>(
                std::min<std::uint64_t>(config.population, std::numeric_limits<std::uint32_t>::max()));
  options.cohort_min = config.secure.enabled ? secagg::kMinClients : 1;
  options.secure = config.secure;
  options.clip_norm = config.clip_norm;
  options.privacy = config.privacy;
  // Poisson draws are random and secret from whoever sees only the models: their rate is the amplification.
  const auto expected_cohort = static_cast<std::uint32_t>(std::max<double>(
      secagg::kMinClients, std::round(config.effective_sampling_rate() * static_cast<double>(config.population))));
  if (config.sampling == Sampling::kPoisson) {
    options.privacy.sampling_rate = config.effective_sampling_rate();
    options.privacy.expected_clients = expected_cohort;  // a mechanism that does not depend on who was drawn
  }
  options.max_examples_per_client = config.weighting.max_examples_per_client;
  options.weighting = config.weighting.weighting;
  options.checkin_window = std::chrono::seconds(1);
  options.training_deadline = std::chrono::hours(24 * 365);
  options.plan = config.plan;
  options.seed = config.seed;
  options.reproducible_aggregation = true;  // as the TLS transport's daemon: the same sum in the same order
  aggregator::CoordinatorStart begin;
  // With personal tensors the server holds, sends and receives only the federated ones.
  const model::PersonalTensors personal(config.plan.personal);
  begin.global_model = personal.global_part(initial_model->parameters(), config.model.describe());
  const std::uint64_t model_bytes = begin.global_model.total_bytes();
  aggregator::RoundCoordinator coordinator(options, std::move(begin), aggregator::make_strategy(config.strategy));

  SimClock clock;
  check_no_refusal(coordinator.start(clock.now()));
  SimSummary summary;
  codec::ModelFile final_model;
  std::uint64_t attempt = 0;
  std::uint64_t empty_streak = 0;
  std::uint64_t abandoned_streak = 0;
  std::vector<std::uint64_t> canary_sends(config.canaries.count, 0);
  while (!coordinator.finished()) {
    const auto round_start = WallClock::now();
    const std::vector<ClientIndex> cohort = sample_cohort(config, ++attempt);
    if (cohort.empty()) {
      ++summary.empty_draws;
      coordinator.charge_skipped_draw(expected_cohort);
      if (++empty_streak >= 1000) {
        throw Error("poisson sampling drew an empty cohort 1000 times in a row: raise sampling_rate (now " +
                    std::to_string(config.effective_sampling_rate()) + ") or population");
      }
      continue;
    }
    empty_streak = 0;

    // Check-in over the in-memory transport: connection id = client index.
    aggregator::Actions actions;
    for (ClientIndex c : cohort) append(actions, coordinator.on_hello(c, Population::client_id(c), clock.now()));
    if (coordinator.phase() == aggregator::RoundCoordinator::Phase::kCheckIn) {
      clock.advance(options.checkin_window);
      append(actions, coordinator.on_tick(clock.now()));
    }
    check_no_refusal(actions);
    if (coordinator.finished()) break;  // the privacy budget allows no more rounds (budget_spent() says why)
    if (coordinator.phase() == aggregator::RoundCoordinator::Phase::kCheckIn) {
      // A Poisson draw below cohort_min (3 with secure aggregation): the round cannot start. Its clients leave
      // and the draw is skipped, like an empty one.
      for (ClientIndex c : cohort) check_no_refusal(coordinator.on_disconnect(c, "draw below cohort_min", clock.now()));
      ++summary.small_draws;
      coordinator.charge_skipped_draw(expected_cohort);
      if (++empty_streak >= 1000) {
        throw Error("poisson sampling drew fewer than " + std::to_string(options.cohort_min) +
                    " clients 1000 times in a row: raise sampling_rate (now " +
                    std::to_string(config.effective_sampling_rate()) + ") or population");
      }
      continue;
    }
    const double seconds_sampling = since(round_start);
    double seconds_training = 0, compute_seconds = 0, train_call_seconds = 0;
    aggregator::RoundTraffic traffic{};
    std::optional<aggregator::action::RoundClosed> closed;
    // A round can close before any task: secure aggregation that cannot run (a Poisson draw of fewer than 3).
    auto closed_at_start = take_all<aggregator::action::RoundClosed>(actions);
    auto tasks = take_all<aggregator::action::SendTask>(actions);
    if (!closed_at_start.empty()) {
      closed = std::move(closed_at_start.front());
    } else if (tasks.size() != 1) {
      throw Error("internal: expected one task after check-in of " + std::to_string(cohort.size()) +
                  " clients, the coordinator sent " + std::to_string(tasks.size()));
    } else {
    const auto& task = tasks.front();
    traffic.bytes_out = model_bytes * task.conns.size();

    // Who vanishes at which step (dropout.*), decided before training: a client that never sends an update that
    // depends on its training is not trained.
    const bool secure = task.secagg.has_value();
    std::map<ClientIndex, std::optional<RoundStep>> vanishes;
    std::vector<ClientIndex> to_train;
    to_train.reserve(task.conns.size());
    for (auto conn : task.conns) {
      const auto step = planned_dropout(config.dropout, secure, config.seed, task.round_id, conn);
      vanishes[conn] = step;
      if (!step || *step == RoundStep::kUnmask) to_train.push_back(conn);
    }
    // Canaries (the highest indices, so last in client order) send their direction instead of training.
    std::vector<ClientIndex> canaries;
    while (!to_train.empty() && to_train.back() >= config.population) {
      canaries.insert(canaries.begin(), to_train.back());
      to_train.pop_back();
    }
    // Plain rounds: each outcome goes to the coordinator as soon as it is ready, in client order, after the
    // dropouts planned before it — the coordinator's checks and summing overlap the training of later clients.
    // Secure rounds play their steps once every client has trained.
    std::vector<TrainingOutcome> outcomes;
    aggregator::Actions after;
    auto next_conn = task.conns.begin();
    auto vanish_until = [&](decltype(next_conn) end) {
      for (; next_conn != end; ++next_conn) {
        append(after, coordinator.on_disconnect(*next_conn, "simulated dropout before sending its update", clock.now()));
      }
    };
    auto report = [&](TrainingOutcome&& o) {
      compute_seconds += o.compute_seconds;
      if (o.update) train_call_seconds += o.update->train_seconds;
      if (secure) {
        outcomes.push_back(std::move(o));
        return;
      }
      vanish_until(std::find(next_conn, task.conns.end(), o.client));
      if (next_conn == task.conns.end()) throw Error("internal: trained a client that is not in the task");
      ++next_conn;
      if (o.update) {
        traffic.bytes_in += model_bytes;
        append(after, coordinator.on_update(o.client, std::move(*o.update), clock.now()));
      } else {
        append(after, coordinator.on_disconnect(o.client, "local training failed: " + o.error, clock.now()));
      }
    };
    const auto train_start = WallClock::now();
    // In a secure round the pool only trains: the round's own participant (secure_round.h) clips what it sends, and
    // must see the update's norm before clipping (adaptive clipping's bit).
    ml::TrainingPlan training_plan = task.plan;
    if (secure) training_plan.clip_norm = 0;
    trainer.train(to_train, task.round_id, *task.model, training_plan, report);
    for (ClientIndex c : canaries) {
      ++canary_sends[c - config.population];
      report(canary_outcome(config, c, task.round_id, *task.model));
    }
    seconds_training = since(train_start);

    if (secure) {
      std::vector<SecureClient> clients;
      auto trained = outcomes.begin();
      for (auto conn : task.conns) {
        SecureClient c{conn, vanishes[conn], std::nullopt, ""};
        if (trained != outcomes.end() && trained->client == conn) {
          c.update = std::move(trained->update);
          c.error = trained->error;
          ++trained;
        }
        clients.push_back(std::move(c));
      }
      closed = play_secure_round(coordinator, task, std::move(clients), config.seed, [&] { return clock.now(); },
                                 traffic);
    } else {
      vanish_until(task.conns.end());
      auto all_closed = take_all<aggregator::action::RoundClosed>(after);
      if (all_closed.size() != 1) throw Error("internal: the round did not close after every client reported");
      closed = std::move(all_closed.front());
    }
    }
    const auto& rc = *closed;
    final_model = {rc.next_round_id, rc.completed_rounds, *rc.global_model, rc.strategy, *rc.strategy_state};
    abandoned_streak = rc.report.completed ? 0 : abandoned_streak + 1;

    // With personal tensors the global model is not a whole model: only the clients measure it (local_measures.h).
    const auto eval_start = WallClock::now();
    std::optional<ml::EvalMetrics> eval;
    if (personal.empty()) eval = pool.evaluate(*rc.global_model, test, config.eval_max_examples);
    const double seconds_evaluation = since(eval_start);

    nlohmann::json record = aggregator::round_record(rc.report, rc.completed_rounds, traffic, eval, seconds_evaluation);
    record["sampled"] = cohort.size();
    record["seconds"]["training_compute"] = compute_seconds;  // summed over clients and workers
    record["seconds"]["training_calls"] = train_call_seconds;  // whole ImageModel::train calls, summed
    record["seconds"]["training_wall"] = seconds_training;
    RoundRow row;
    row.round = rc.report.round_id;
    row.completed_rounds = rc.completed_rounds;
    row.test_accuracy = eval ? eval->accuracy : 0;
    row.test_loss = eval ? eval->loss : 0;
    row.note_local_evaluations(rc.report.local_evaluations);
    row.mean_train_loss = rc.report.mean_train_loss;
    row.participants = rc.report.survivors;
    row.cohort = rc.report.cohort;
    row.bytes_up = traffic.bytes_in;
    row.bytes_down = traffic.bytes_out;
    row.seconds_sampling = seconds_sampling;
    row.seconds_training = seconds_training;
    row.seconds_aggregation = rc.report.aggregation_seconds;
    row.seconds_evaluation = seconds_evaluation;
    row.seconds_round = since(round_start);
    record["seconds"]["round"] = row.seconds_round;
    outputs.record(record, row);

    summary.note_round(row);
    if (progress) progress(row, config.rounds, since(start));
    if (abandoned_streak >= 100) {
      throw Error("100 rounds in a row were abandoned (no client produced a valid update; last reason: " +
                  rc.report.abandon_reason + "); see rounds.jsonl's dropped clients");
    }
    check_no_refusal(coordinator.on_round_recorded(clock.now()));
  }
  trainer.release_workers();
  if (coordinator.budget_spent()) {
    if (summary.rounds == 0) {
      throw Error("the privacy budget allows no round: " + *coordinator.budget_spent());
    }
    summary.stopped_by_budget = *coordinator.budget_spent();
  }
  codec::write_model_file(outputs.dir() / "final_model.sotto", final_model);
  nlohmann::json extra = {{"model_bytes", model_bytes}, {"ranks", cluster.size()}, {"transport", "memory"}};
  if (config.canaries.count > 0) {
    extra["canaries"] = canary_report(config, initial_model->parameters(), final_model.model, canary_sends,
                                      outputs.dir() / "canaries.csv");
  }
  if (config.local_fraction > 0) {
    ml::TrainingPlan final_plan = config.plan;
    final_plan.seed = mix64(config.seed ^ (final_model.next_round_id + 1));
    extra["local_evaluation"] = summary.local_evaluation =
        measure_every_client(pool, population, &final_model.model, final_plan, outputs.dir() / "clients.csv");
  }
  summary.total_seconds = since(start);
  finish_outputs(outputs, config, summary, extra, warn);
  return summary;
}

}  // namespace sotto::sim
