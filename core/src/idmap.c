/* Index of objects by id: open addressing with linear probing (see
 * idmap.h). */
#include "idmap.h"

#include <string.h>

#include "alloc.h"

#define MIN_SLOTS 16

/* Returns a 64-bit hash of the id, never 0 (which marks an empty slot).
 * The store's ids come from the random source or from its own files, so
 * clients cannot choose keys that collide and a fixed seed is enough. */
static uint64_t id_hash(const char *id) {
  size_t len = strlen(id);
  uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
  uint64_t word;
  for (; len >= 8; id += 8, len -= 8) {
    memcpy(&word, id, 8);
    h = (h ^ word) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  word = 0;
  memcpy(&word, id, len);
  h ^= word;
  /* The finalizer of MurmurHash3, so that the low bits used as the slot
   * number depend on every byte. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h ? h : 1;
}

static const char *item_key(const apig_idmap *map, const void *item) {
  return (const char *)item + map->key_offset;
}

void apig_idmap_init(apig_idmap *map, size_t key_offset) {
  memset(map, 0, sizeof *map);
  map->key_offset = key_offset;
}

void apig_idmap_free(apig_idmap *map) {
  apig_free(map->slots);
  apig_idmap_init(map, map->key_offset);
}

static size_t slot_count(const apig_idmap *map) {
  return map->slots ? map->mask + 1 : 0;
}

/* Stores (hash, item) in the first empty slot from its home slot on. */
static void place(apig_idmap_slot *slots, size_t mask, uint64_t hash,
                  void *item) {
  size_t i = (size_t)hash & mask;
  while (slots[i].hash != 0)
    i = (i + 1) & mask;
  slots[i].hash = hash;
  slots[i].item = item;
}

int apig_idmap_reserve(apig_idmap *map, size_t more) {
  size_t need = map->count + more;
  /* At most half the slots are in use, which keeps probe runs short. */
  if (need <= slot_count(map) / 2)
    return 0;
  size_t count = MIN_SLOTS;
  while (count / 2 < need)
    count *= 2;
  apig_idmap_slot *slots = apig_calloc(count, sizeof *slots);
  if (!slots)
    return -1;
  for (size_t i = 0; i < slot_count(map); i++)
    if (map->slots[i].hash != 0)
      place(slots, count - 1, map->slots[i].hash, map->slots[i].item);
  apig_free(map->slots);
  map->slots = slots;
  map->mask = count - 1;
  return 0;
}

/* The slot number holding id, or -1. */
static long find(const apig_idmap *map, const char *id, uint64_t hash) {
  if (!map->slots)
    return -1;
  for (size_t i = (size_t)hash & map->mask;; i = (i + 1) & map->mask) {
    const apig_idmap_slot *slot = &map->slots[i];
    if (slot->hash == 0)
      return -1;
    if (slot->hash == hash && strcmp(item_key(map, slot->item), id) == 0)
      return (long)i;
  }
}

void *apig_idmap_get(const apig_idmap *map, const char *id) {
  long i = find(map, id, id_hash(id));
  return i < 0 ? NULL : map->slots[i].item;
}

int apig_idmap_put(apig_idmap *map, void *item) {
  if (apig_idmap_reserve(map, 1) != 0)
    return -1;
  place(map->slots, map->mask, id_hash(item_key(map, item)), item);
  map->count++;
  return 0;
}

void *apig_idmap_remove(apig_idmap *map, const char *id) {
  long found = find(map, id, id_hash(id));
  if (found < 0)
    return NULL;
  size_t hole = (size_t)found;
  void *item = map->slots[hole].item;
  /* Backward-shift deletion: move each following entry whose home slot
   * is not between the hole and its own slot into the hole, so that
   * every remaining entry stays reachable from its home slot. */
  for (size_t j = (hole + 1) & map->mask; map->slots[j].hash != 0;
       j = (j + 1) & map->mask) {
    size_t home = (size_t)map->slots[j].hash & map->mask;
    int stays = hole <= j ? (home > hole && home <= j)
                          : (home > hole || home <= j);
    if (!stays) {
      map->slots[hole] = map->slots[j];
      hole = j;
    }
  }
  map->slots[hole].hash = 0;
  map->slots[hole].item = NULL;
  map->count--;
  return item;
}

void apig_idmap_prefetch(const apig_idmap *map, const char *id, int item) {
  if (!map->slots)
    return;
  uint64_t hash = id_hash(id);
  size_t i = (size_t)hash & map->mask;
  if (!item) {
    __builtin_prefetch(&map->slots[i]);
    return;
  }
  for (; map->slots[i].hash != 0; i = (i + 1) & map->mask)
    if (map->slots[i].hash == hash) {
      __builtin_prefetch(item_key(map, map->slots[i].item));
      return;
    }
}

void apig_idmap_each(const apig_idmap *map, void (*fn)(void *item)) {
  for (size_t i = 0; i < slot_count(map); i++)
    if (map->slots[i].hash != 0)
      fn(map->slots[i].item);
}
