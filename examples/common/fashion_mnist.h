/* fashion_mnist.h: the examples' reader of Fashion-MNIST's gzipped IDX files (Debian's dataset-fashion-mnist), as
 * an app would keep its own data: one shard of a split, as raw 28x28 greyscale bytes and labels. Header-only C. */
#ifndef SOTTO_EXAMPLES_FASHION_MNIST_H
#define SOTTO_EXAMPLES_FASHION_MNIST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { kFashionPixels = 28 * 28, kFashionClasses = 10 };

typedef struct fashion_shard {
  size_t count;
  unsigned char* images; /* count * kFashionPixels */
  unsigned char* labels; /* count */
} fashion_shard;

/* Reads `size` bytes after a header of `skip` bytes of a gzipped IDX file; returns NULL on failure. */
static inline unsigned char* fashion_read_idx(const char* dir, const char* name, size_t skip, size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  gzFile file = gzopen(path, "rb");
  if (!file) return NULL;
  unsigned char* bytes = malloc(skip + size);
  const int ok = bytes && gzread(file, bytes, (unsigned)(skip + size)) == (int)(skip + size);
  gzclose(file);
  if (!ok) {
    free(bytes);
    return NULL;
  }
  memmove(bytes, bytes + skip, size);
  return bytes;
}

/* The examples of split `prefix` ("train": 60,000; "t10k": 10,000) whose index is `shard` modulo `shards`, at most
 * `max` of them. Returns 0, or -1 when the files cannot be read. */
static inline int fashion_load_shard(const char* dir, const char* prefix, size_t shard, size_t shards, size_t max,
                                     fashion_shard* out) {
  const size_t total = strcmp(prefix, "train") == 0 ? 60000 : 10000;
  char images_name[64], labels_name[64];
  snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte.gz", prefix);
  snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte.gz", prefix);
  unsigned char* images = fashion_read_idx(dir, images_name, 16, total * kFashionPixels);
  unsigned char* labels = fashion_read_idx(dir, labels_name, 8, total);
  if (!images || !labels) return free(images), free(labels), -1;
  out->images = malloc(max * kFashionPixels);
  out->labels = malloc(max);
  out->count = 0;
  for (size_t i = shard; i < total && out->count < max; i += shards) {
    memcpy(out->images + out->count * kFashionPixels, images + i * kFashionPixels, kFashionPixels);
    out->labels[out->count++] = labels[i];
  }
  free(images);
  free(labels);
  return 0;
}

static inline void fashion_free(fashion_shard* s) {
  free(s->images);
  free(s->labels);
  s->images = s->labels = NULL;
  s->count = 0;
}

#endif /* SOTTO_EXAMPLES_FASHION_MNIST_H */
