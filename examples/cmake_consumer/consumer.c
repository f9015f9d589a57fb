/* Links the installed C API and calls it: a client cannot be made from a config that does not exist, and says why.
 * Given a client config with a [model], it also makes a client whose library trains that model and runs it on one
 * image: the installed libsotto_client.so finds its LibTorch module (lib/sotto/) by itself. */
#include <stdio.h>
#include <string.h>

#include <sotto/sotto_client.h>

static sotto_status no_training(void* user, sotto_tensor* t, size_t n, const sotto_training_plan* p,
                                sotto_fit_result* r) {
  (void)user, (void)t, (void)n, (void)p, (void)r;
  return SOTTO_ERROR_TRAINING;
}

static int no_examples(void* user, uint64_t index, uint8_t* pixels, size_t pixel_count, uint32_t* label) {
  (void)user, (void)index, (void)pixels, (void)pixel_count, (void)label;
  return 0;
}

/* The model of `config`, untrained, on a blank image: 0 when it gives 10 logits. */
static int predict_once(const char* config) {
  const sotto_client_options options = {config, NULL, 0};
  sotto_client* client = NULL;
  sotto_status s = sotto_client_create_model_trainer(&options, no_examples, NULL, &client);
  float logits[10];
  static const uint8_t blank[28 * 28];
  if (s == SOTTO_OK) s = sotto_client_predict(client, blank, sizeof blank, logits, 10);
  printf("consumer_c: predict: %s %s\n", sotto_status_name(s), s == SOTTO_OK ? "" : sotto_last_error());
  sotto_client_destroy(client);
  return s == SOTTO_OK ? 0 : 1;
}

int main(int argc, char** argv) {
  const sotto_client_options options = {"/nonexistent/client.toml", NULL, 0};
  sotto_client* client = NULL;
  const sotto_status s = sotto_client_create(&options, no_training, NULL, &client);
  printf("consumer_c: API %d, %s: %s\n", sotto_api_version(), sotto_status_name(s), sotto_last_error());
  if (s != SOTTO_ERROR_CONFIG || client != NULL || strlen(sotto_last_error()) == 0) return 1;
  return argc > 1 ? predict_once(argv[1]) : 0;
}
