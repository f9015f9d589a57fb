/* c_app: an app written in C that takes part in Sotto's federated training through libsotto_client.so.
 *
 * It trains the aggregator's "fashion_linear" model (multinomial logistic regression on Fashion-MNIST's pixels)
 * with its own SGD on its own examples, which never leave it: the library sends only the protected update. It
 * records the person's opt-in first (without it the library sends nothing), and prints its ledger at the end.
 *
 *   c_app CONFIG KEY_FILE DATA_DIR SHARD NUM_SHARDS MAX_EXAMPLES [HELD_OUT]
 *
 * CONFIG is a sotto-client TOML config with state.dir; KEY_FILE holds the state key as 64 hex digits (sotto-client
 * keygen); the state generation is kept in KEY_FILE.generation. The app's examples are the training images whose
 * index is SHARD modulo NUM_SHARDS, at most MAX_EXAMPLES of them. With HELD_OUT, the last HELD_OUT of them are not
 * trained on: each round the app measures the received model and the one it trained on them and reports both (the
 * library sends them where the config allows). Tensors the plan makes personal stay on the device; the app says
 * which they are on its first round.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fashion_mnist.h"
#include "../common/state_key_file.h"
#include "sotto/sotto_client.h"

enum { kPixels = kFashionPixels, kClasses = kFashionClasses };

/* Normalised as Sotto's built-in models expect (README.md, model.architecture). */
static float normalised(unsigned char pixel) { return ((float)pixel / 255.0f - 0.2860f) / 0.3530f; }

typedef struct examples {
  size_t count;
  float* pixels;          /* count * kPixels */
  unsigned char* labels;  /* count */
} examples;

static int load_shard(const char* dir, size_t shard, size_t shards, size_t max, examples* out) {
  fashion_shard raw;
  if (fashion_load_shard(dir, "train", shard, shards, max, &raw) != 0) return -1;
  out->count = raw.count;
  out->pixels = malloc(raw.count * kPixels * sizeof(float));
  for (size_t i = 0; i < raw.count * kPixels; ++i) out->pixels[i] = normalised(raw.images[i]);
  out->labels = raw.labels;
  free(raw.images);
  return 0;
}

/* The model's two tensors, found by name. */
typedef struct linear_model {
  float* weight; /* [kClasses][kPixels] */
  float* bias;   /* [kClasses] */
} linear_model;

static int find_model(sotto_tensor* tensors, size_t count, linear_model* m) {
  m->weight = m->bias = NULL;
  for (size_t i = 0; i < count; ++i) {
    if (strcmp(tensors[i].name, "fc.weight") == 0 && tensors[i].count == kClasses * kPixels) m->weight = tensors[i].data;
    if (strcmp(tensors[i].name, "fc.bias") == 0 && tensors[i].count == kClasses) m->bias = tensors[i].data;
  }
  return m->weight && m->bias ? 0 : -1;
}

/* Softmax cross-entropy of one example: fills probs (then the loss's gradient wrt the logits), returns the loss. */
static double forward(const linear_model* m, const float* x, unsigned label, float* grad, int* correct) {
  float logits[kClasses], top = -INFINITY;
  int best = 0;
  for (int k = 0; k < kClasses; ++k) {
    float z = m->bias[k];
    for (int p = 0; p < kPixels; ++p) z += m->weight[k * kPixels + p] * x[p];
    logits[k] = z;
    if (z > top) top = z, best = k;
  }
  double sum = 0;
  for (int k = 0; k < kClasses; ++k) sum += exp(logits[k] - top);
  for (int k = 0; k < kClasses; ++k) grad[k] = (float)(exp(logits[k] - top) / sum) - (k == (int)label ? 1.0f : 0.0f);
  *correct += best == (int)label;
  return -(logits[label] - top - log(sum));
}

typedef struct app {
  examples data;
  size_t held_out; /* the last held_out examples of data: measured on, never trained on */
  int told_personal;
  int told_threads;
  sotto_client* client;
} app;

/* The model's accuracy on examples [begin, end) of the app's data. */
static double accuracy_on(const app* a, const linear_model* m, size_t begin, size_t end) {
  float grad[kClasses];
  int correct = 0;
  for (size_t i = begin; i < end; ++i) forward(m, a->data.pixels + i * kPixels, a->data.labels[i], grad, &correct);
  return end > begin ? (double)correct / (double)(end - begin) : 0.0;
}

/* Once: which of the model's tensors the plan keeps on this device. */
static void tell_personal(app* a, const sotto_tensor* tensors, size_t count, const sotto_training_plan* plan) {
  if (a->told_personal) return;
  a->told_personal = 1;
  for (size_t i = 0; i < count; ++i) {
    if (sotto_tensor_is_personal(plan, tensors[i].name)) printf("c_app: personal tensor %s\n", tensors[i].name);
  }
}

/* sotto_train_fn: plain mini-batch SGD (momentum left out for brevity); each batch only when the library says. */
static sotto_status train(void* user, sotto_tensor* tensors, size_t count, const sotto_training_plan* plan,
                          sotto_fit_result* result) {
  app* a = user;
  linear_model m;
  if (find_model(tensors, count, &m) != 0) {
    sotto_set_training_error("the aggregator's model is not fashion_linear (fc.weight [10, 784], fc.bias [10])");
    return SOTTO_ERROR_TRAINING;
  }
  tell_personal(a, tensors, count, plan);
  if (!a->told_threads) printf("c_app: training threads cap %u\n", plan->threads), a->told_threads = 1;
  const size_t trained = a->data.count - a->held_out;
  if (a->held_out > 0) result->held_out_global_accuracy = accuracy_on(a, &m, trained, a->data.count);
  float* gw = calloc(kClasses * kPixels, sizeof(float));
  float gb[kClasses], grad[kClasses];
  double loss = 0;
  int correct = 0;
  for (unsigned epoch = 0; epoch < plan->epochs; ++epoch) {
    loss = 0, correct = 0;
    for (size_t begin = 0; begin < trained; begin += plan->batch_size) {
      if (!sotto_client_next_batch(a->client)) break; /* cancelled, stopped, opted out or ineligible */
      const size_t end = begin + plan->batch_size < trained ? begin + plan->batch_size : trained;
      memset(gw, 0, kClasses * kPixels * sizeof(float));
      memset(gb, 0, sizeof gb);
      for (size_t i = begin; i < end; ++i) {
        const float* x = a->data.pixels + i * kPixels;
        loss += forward(&m, x, a->data.labels[i], grad, &correct);
        for (int k = 0; k < kClasses; ++k) {
          gb[k] += grad[k];
          for (int p = 0; p < kPixels; ++p) gw[k * kPixels + p] += grad[k] * x[p];
        }
      }
      const float step = (float)(plan->learning_rate / (double)(end - begin));
      for (int k = 0; k < kClasses; ++k) m.bias[k] -= step * gb[k];
      for (int j = 0; j < kClasses * kPixels; ++j) m.weight[j] -= step * gw[j] + (float)plan->weight_decay * m.weight[j];
    }
  }
  free(gw);
  result->num_examples = trained;
  result->mean_loss = loss / (double)trained;
  result->accuracy = (double)correct / (double)trained;
  if (a->held_out > 0) {
    result->held_out_examples = a->held_out;
    result->held_out_personal_accuracy = accuracy_on(a, &m, trained, a->data.count);
  }
  return SOTTO_OK;
}

/* sotto_eligibility_fn: asked before every check-in and batch. A real app looks at the battery and the network;
 * this one is always eligible, and asks the library whether it is stopping (callbacks may call back into it). */
static int eligible(void* user, char* reason, size_t reason_size) {
  const app* a = user;
  (void)reason, (void)reason_size;
  if (a->client && sotto_client_should_stop(a->client)) printf("c_app: the library is stopping this run\n");
  return 1;
}

static void on_event(void* user, const sotto_event* e) {
  (void)user;
  printf("c_app: event %d round %llu %s\n", (int)e->kind, (unsigned long long)e->round, e->message);
  fflush(stdout);
}

static unsigned long long read_generation(const char* path) {
  unsigned long long g = 0;
  FILE* f = fopen(path, "r");
  if (f) {
    if (fscanf(f, "%llu", &g) != 1) g = 0;
    fclose(f);
  }
  return g;
}

static void print_ledger(sotto_client* client) {
  size_t n = 0;
  if (sotto_client_ledger_size(client, &n) != SOTTO_OK) return;
  printf("c_app: ledger: %zu entries\n", n);
  for (size_t i = 0; i < n; ++i) {
    sotto_ledger_entry e;
    sotto_client_ledger_entry(client, i, &e);
    printf("c_app: ledger round %llu %s examples %llu bytes_sent %llu secure %d reason '%s'\n",
           (unsigned long long)e.round, e.outcome, (unsigned long long)e.examples, (unsigned long long)e.bytes_sent,
           e.secure_aggregation, sotto_client_ledger_reason(client, i));
  }
}

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    fprintf(stderr, "usage: c_app CONFIG KEY_FILE DATA_DIR SHARD NUM_SHARDS MAX_EXAMPLES [HELD_OUT]\n");
    return 2;
  }
  app a = {{0, NULL, NULL}, argc == 8 ? strtoul(argv[7], NULL, 10) : 0, 0, 0, NULL};
  unsigned char key[32];
  char generation_file[4096];
  snprintf(generation_file, sizeof generation_file, "%s.generation", argv[2]);
  if (read_state_key(argv[2], key) != 0) return fprintf(stderr, "c_app: cannot read the key in %s\n", argv[2]), 1;
  if (load_shard(argv[3], strtoul(argv[4], NULL, 10), strtoul(argv[5], NULL, 10), strtoul(argv[6], NULL, 10),
                 &a.data) != 0 || a.data.count == 0) {
    return fprintf(stderr, "c_app: cannot read Fashion-MNIST from %s\n", argv[3]), 1;
  }
  if (a.held_out >= a.data.count) {
    return fprintf(stderr, "c_app: HELD_OUT (%zu) leaves none of the %zu examples to train on\n", a.held_out,
                   a.data.count), 1;
  }
  const sotto_client_options options = {argv[1], key, read_generation(generation_file)};
  sotto_status s = sotto_client_create(&options, train, &a, &a.client);
  memset(key, 0, sizeof key);
  if (s != SOTTO_OK) return fprintf(stderr, "c_app: %s: %s\n", sotto_status_name(s), sotto_last_error()), 1;
  sotto_client_on_event(a.client, on_event, NULL);
  sotto_client_set_eligibility(a.client, eligible, &a);
  /* The app's caps: one training thread (this SGD is single-threaded), ten minutes a round, a 64 MiB update. */
  sotto_client_set_limits(a.client, 1, 600.0, 64u << 20, 0);
  /* The app's model as it starts: zeros. A tensor the plan keeps on the device starts from here. */
  static float initial_weight[kClasses * kPixels], initial_bias[kClasses];
  static const int64_t weight_shape[2] = {kClasses, kPixels}, bias_shape[1] = {kClasses};
  const sotto_tensor initial[2] = {{"fc.weight", initial_weight, kClasses * kPixels, weight_shape, 2},
                                   {"fc.bias", initial_bias, kClasses, bias_shape, 1}};
  sotto_client_set_initial_model(a.client, initial, 2);
  s = sotto_client_set_consent(a.client, 1, SOTTO_CONSENT_TRAINING, 0); /* the person said yes */
  sotto_run_summary summary = {0, 0, 0};
  if (s == SOTTO_OK) s = sotto_client_run(a.client, &summary);
  if (s != SOTTO_OK) fprintf(stderr, "c_app: %s: %s\n", sotto_status_name(s), sotto_last_error());
  printf("c_app: finished %d, rounds contributed %llu\n", summary.finished,
         (unsigned long long)summary.rounds_contributed);
  FILE* g = fopen(generation_file, "w");
  if (g) fprintf(g, "%llu\n", (unsigned long long)sotto_client_state_generation(a.client)), fclose(g);
  print_ledger(a.client);
  sotto_client_destroy(a.client);
  free(a.data.pixels);
  free(a.data.labels);
  return s == SOTTO_OK && summary.finished ? 0 : 1;
}
