/* state_key_file.h: how the examples read the 32-byte state key from a key file (64 hex digits, as `sotto-client
 * keygen` writes it). A real app takes the key from the OS keystore instead. Header-only C. */
#ifndef SOTTO_EXAMPLES_STATE_KEY_FILE_H
#define SOTTO_EXAMPLES_STATE_KEY_FILE_H

#include <stdio.h>

/* Returns 0 with the key in `key`, or -1 when the file cannot be read or holds no key. */
static inline int read_state_key(const char* path, unsigned char key[32]) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int ok = 1;
  for (int i = 0; i < 32 && ok; ++i) {
    unsigned byte;
    ok = fscanf(f, "%2x", &byte) == 1;
    key[i] = (unsigned char)byte;
  }
  fclose(f);
  return ok ? 0 : -1;
}

#endif /* SOTTO_EXAMPLES_STATE_KEY_FILE_H */
