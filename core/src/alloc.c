/* Memory allocation through the host's allocator. */
#include "alloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local const apig_allocator *current;

const apig_allocator *apig_alloc_enter(const apig_allocator *allocator) {
  const apig_allocator *previous = current;
  current = allocator;
  return previous;
}

void apig_alloc_leave(const apig_allocator *previous) { current = previous; }

void *apig_realloc(void *ptr, size_t size) {
  if (current && current->realloc) {
    if (size == 0) {
      current->realloc(current->ud, ptr, 0);
      return NULL;
    }
    return current->realloc(current->ud, ptr, size);
  }
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, size);
}

void *apig_malloc(size_t size) { return apig_realloc(NULL, size ? size : 1); }

void *apig_calloc(size_t count, size_t size) {
  if (size && count > ((size_t)-1) / size)
    return NULL;
  void *p = apig_malloc(count * size);
  if (p)
    memset(p, 0, count * size);
  return p;
}

void apig_free(void *ptr) {
  if (ptr)
    apig_realloc(ptr, 0);
}

char *apig_strndup(const char *s, size_t len) {
  char *copy = apig_malloc(len + 1);
  if (!copy)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *apig_strdup(const char *s) { return apig_strndup(s, strlen(s)); }
