/* Memory allocation through the host's allocator.
 *
 * Every allocation of the library goes through these functions. Each public
 * entry point installs its handle's allocator for the calling thread, so
 * memory of one handle always comes from, and returns to, that handle's
 * allocator. cJSON is hooked to the same functions.
 */
#ifndef APIG_ALLOC_H
#define APIG_ALLOC_H

#include <stddef.h>

#include "apig.h"

void *apig_malloc(size_t size);
void *apig_calloc(size_t count, size_t size);
void *apig_realloc(void *ptr, size_t size);
void apig_free(void *ptr);
char *apig_strdup(const char *s);
char *apig_strndup(const char *s, size_t len);

/* Makes `allocator` (NULL: the C library's) current for this thread and
 * returns the one it replaces, for the caller to restore. */
const apig_allocator *apig_alloc_enter(const apig_allocator *allocator);
void apig_alloc_leave(const apig_allocator *previous);

#endif
