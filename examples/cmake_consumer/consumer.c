/* Links the installed C API and calls it: a client cannot be made from a config that does not exist, and says why. */
#include <stdio.h>
#include <string.h>

#include <sotto/sotto_client.h>

static sotto_status no_training(void* user, sotto_tensor* t, size_t n, const sotto_training_plan* p,
                                sotto_fit_result* r) {
  (void)user, (void)t, (void)n, (void)p, (void)r;
  return SOTTO_ERROR_TRAINING;
}

int main(void) {
  const sotto_client_options options = {"/nonexistent/client.toml", NULL, 0};
  sotto_client* client = NULL;
  const sotto_status s = sotto_client_create(&options, no_training, NULL, &client);
  printf("consumer_c: API %d, %s: %s\n", sotto_api_version(), sotto_status_name(s), sotto_last_error());
  return s == SOTTO_ERROR_CONFIG && client == NULL && strlen(sotto_last_error()) > 0 ? 0 : 1;
}
