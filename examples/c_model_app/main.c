/* c_model_app: an app in C that has a model file and its own examples but no training code. Sotto's library trains
 * the model (the config's model.torchscript, exported from PyTorch by models/export_model.py) on the examples the
 * app hands it each round through a callback, and takes part in rounds; afterwards the app runs the person's model
 * on images through the library and reports its accuracy. LibTorch is the library's optional module, loaded only
 * when it first trains.
 *
 *   c_model_app CONFIG KEY_FILE DATA_DIR SHARD NUM_SHARDS MAX_EXAMPLES [TORCH_RUNTIME]
 *
 * CONFIG is a sotto-client TOML config with [model] and state.dir; KEY_FILE holds the state key (64 hex digits,
 * sotto-client keygen). The app's examples are the training images whose index is SHARD modulo NUM_SHARDS, at most
 * MAX_EXAMPLES; it measures the person's model on the test images of the same shard (at most 500). TORCH_RUNTIME,
 * when given, is where libsotto_torch_runtime.so is (sotto_set_torch_runtime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fashion_mnist.h"
#include "../common/state_key_file.h"
#include "sotto/sotto_client.h"

/* sotto_example_fn: example `index` of the app's own data, copied for the library's training. */
static int example(void* user, uint64_t index, uint8_t* pixels, size_t pixel_count, uint32_t* label) {
  const fashion_shard* data = user;
  if (index >= data->count) return 0;
  if (pixel_count != kFashionPixels) return -1;
  memcpy(pixels, data->images + index * kFashionPixels, kFashionPixels);
  *label = data->labels[index];
  return 1;
}

/* The share of `test` the person's model classifies right, or -1 when prediction fails. */
static double accuracy(sotto_client* client, const fashion_shard* test) {
  size_t correct = 0;
  for (size_t i = 0; i < test->count; ++i) {
    float logits[kFashionClasses];
    if (sotto_client_predict(client, test->images + i * kFashionPixels, kFashionPixels, logits, kFashionClasses) !=
        SOTTO_OK) {
      fprintf(stderr, "c_model_app: predict: %s\n", sotto_last_error());
      return -1;
    }
    int best = 0;
    for (int k = 1; k < kFashionClasses; ++k) best = logits[k] > logits[best] ? k : best;
    correct += best == test->labels[i];
  }
  return test->count > 0 ? (double)correct / (double)test->count : 0.0;
}

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    fprintf(stderr, "usage: c_model_app CONFIG KEY_FILE DATA_DIR SHARD NUM_SHARDS MAX_EXAMPLES [TORCH_RUNTIME]\n");
    return 2;
  }
  const size_t shard = strtoul(argv[4], NULL, 10), shards = strtoul(argv[5], NULL, 10);
  fashion_shard train, test;
  if (fashion_load_shard(argv[3], "train", shard, shards, strtoul(argv[6], NULL, 10), &train) != 0 ||
      fashion_load_shard(argv[3], "t10k", shard, shards, 500, &test) != 0) {
    return fprintf(stderr, "c_model_app: cannot read Fashion-MNIST from %s\n", argv[3]), 1;
  }
  if (argc == 8) sotto_set_torch_runtime(argv[7]);
  unsigned char key[32];
  if (read_state_key(argv[2], key) != 0) return fprintf(stderr, "c_model_app: cannot read the key in %s\n", argv[2]), 1;
  const sotto_client_options options = {argv[1], key, 0};
  sotto_client* client = NULL;
  sotto_status s = sotto_client_create_model_trainer(&options, example, &train, &client);
  memset(key, 0, sizeof key);
  if (s != SOTTO_OK) return fprintf(stderr, "c_model_app: %s: %s\n", sotto_status_name(s), sotto_last_error()), 1;
  s = sotto_client_set_consent(client, 1, SOTTO_CONSENT_TRAINING, 0); /* the person said yes */
  sotto_run_summary summary = {0, 0, 0};
  if (s == SOTTO_OK) s = sotto_client_run(client, &summary);
  if (s != SOTTO_OK) fprintf(stderr, "c_model_app: %s: %s\n", sotto_status_name(s), sotto_last_error());
  printf("c_model_app: finished %d, rounds contributed %llu\n", summary.finished,
         (unsigned long long)summary.rounds_contributed);
  if (s == SOTTO_OK) {
    printf("c_model_app: the person's model: accuracy %.3f on %zu test images\n", accuracy(client, &test), test.count);
    /* The person opts out: what the library kept of them goes, and prediction falls back to the initial model. */
    if (sotto_client_set_consent(client, 0, 0, 1) == SOTTO_OK) {
      printf("c_model_app: after opting out: accuracy %.3f\n", accuracy(client, &test));
    }
  }
  sotto_client_destroy(client);
  fashion_free(&train);
  fashion_free(&test);
  return s == SOTTO_OK && summary.finished ? 0 : 1;
}
