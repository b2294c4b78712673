/* An index of objects by their id string, for the store's large tables
 * (APIs and versions).
 *
 * Open addressing with linear probing: each slot is a 64-bit hash and the
 * object. A lookup reads one or two adjacent slots and then only the object
 * whose hash matches, while a chained table reads every object of a chain.
 * The id is a NUL-terminated string at a fixed offset inside each
 * object. Removal shifts the following slots back, so no tombstones build
 * up. The index never allocates during apig_idmap_put once
 * apig_idmap_reserve has made room, which lets the store prepare a change
 * fully before committing it.
 */
#ifndef APIG_IDMAP_H
#define APIG_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct apig_idmap_slot {
  uint64_t hash; /* 0: empty */
  void *item;
} apig_idmap_slot;

typedef struct apig_idmap {
  apig_idmap_slot *slots;
  size_t mask;  /* slot count - 1; the slot count is a power of two */
  size_t count; /* objects held */
  size_t key_offset;
} apig_idmap;

/* Sets up an empty index of objects whose id is at key_offset. */
void apig_idmap_init(apig_idmap *map, size_t key_offset);
void apig_idmap_free(apig_idmap *map);

/* Makes room for `more` objects beyond those held; returns 0 or -1 when
 * memory ran out (the index is then unchanged). */
int apig_idmap_reserve(apig_idmap *map, size_t more);

/* Returns the object with this id, or NULL. */
void *apig_idmap_get(const apig_idmap *map, const char *id);

/* Adds an object whose id is not in the index yet. Returns 0, or -1 when
 * growing the index ran out of memory. */
int apig_idmap_put(apig_idmap *map, void *item);

/* Removes the object with this id; returns it, or NULL. */
void *apig_idmap_remove(apig_idmap *map, const char *id);

/* Hints that id will be looked up soon. Without item, starts loading its
 * home slot into the cache. With item, once that slot has arrived, starts
 * loading the object it names. Prefetching many ids before their lookups
 * lets the cache misses overlap. */
void apig_idmap_prefetch(const apig_idmap *map, const char *id, int item);

/* Calls fn on every object, in no particular order; fn must not change
 * the index. */
void apig_idmap_each(const apig_idmap *map, void (*fn)(void *item));

#endif
