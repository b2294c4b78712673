/* The id index against a plain array as the model: random adds, lookups and
 * removals, and a probe run that wraps around the end of the slot array. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "idmap.h"
#include "testlib.h"

typedef struct object {
  int number;
  char id[40];
} object;

#define OBJECTS 5000

static object objects[OBJECTS];
static int present[OBJECTS]; /* the model: is objects[i] in the index */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Checks that the index finds exactly the objects the model marks. */
static void check_matches_model(const apig_idmap *map) {
  size_t count = 0;
  int wrong = 0;
  for (int i = 0; i < OBJECTS; i++) {
    object *found = apig_idmap_get(map, objects[i].id);
    if (present[i]) {
      count++;
      wrong += found != &objects[i];
    } else {
      wrong += found != NULL;
    }
  }
  CHECK_INT(wrong, 0);
  CHECK_INT(map->count, count);
}

static size_t visited;
static void count_visit(void *item) {
  (void)item;
  visited++;
}

static void test_empty(void) {
  apig_idmap map;
  apig_idmap_init(&map, offsetof(object, id));
  CHECK(apig_idmap_get(&map, "nothing") == NULL);
  CHECK(apig_idmap_remove(&map, "nothing") == NULL);
  visited = 0;
  apig_idmap_each(&map, count_visit);
  CHECK_INT(visited, 0);
  apig_idmap_free(&map);
}

static void test_random_changes(void) {
  apig_idmap map;
  apig_idmap_init(&map, offsetof(object, id));
  for (int i = 0; i < OBJECTS; i++) {
    objects[i].number = i;
    /* Ids of several lengths, most of them the 32 hex digits of real
     * ids, plus short ones and ones of a single character. */
    if (i % 7 == 0)
      snprintf(objects[i].id, sizeof objects[i].id, "%d", i);
    else
      snprintf(objects[i].id, sizeof objects[i].id, "%016llx%016llx",
               (unsigned long long)next_random(),
               (unsigned long long)next_random());
  }
  for (int round = 0; round < 40000; round++) {
    int i = (int)(next_random() % OBJECTS);
    if (present[i]) {
      CHECK(apig_idmap_remove(&map, objects[i].id) == &objects[i]);
      present[i] = 0;
    } else {
      CHECK_INT(apig_idmap_put(&map, &objects[i]), 0);
      present[i] = 1;
    }
    if (round % 5000 == 0)
      check_matches_model(&map);
  }
  check_matches_model(&map);
  visited = 0;
  apig_idmap_each(&map, count_visit);
  CHECK_INT(visited, map.count);
  apig_idmap_free(&map);
}

/* A full fill then removal of everything, in the order of insertion, and
 * a reserve that makes later puts fit without growing the slots. */
static void test_fill_and_empty(void) {
  apig_idmap map;
  apig_idmap_init(&map, offsetof(object, id));
  CHECK_INT(apig_idmap_reserve(&map, OBJECTS), 0);
  apig_idmap_slot *slots = map.slots;
  for (int i = 0; i < OBJECTS; i++) {
    CHECK_INT(apig_idmap_put(&map, &objects[i]), 0);
    present[i] = 1;
  }
  CHECK(map.slots == slots);
  check_matches_model(&map);
  for (int i = 0; i < OBJECTS; i++) {
    CHECK(apig_idmap_remove(&map, objects[i].id) == &objects[i]);
    present[i] = 0;
  }
  check_matches_model(&map);
  CHECK_INT(map.count, 0);
  apig_idmap_free(&map);
}

/* Returns the slot number that contains item. */
static long slot_of(const apig_idmap *map, const object *item) {
  for (size_t i = 0; i <= map->mask; i++)
    if (map->slots[i].item == item)
      return (long)i;
  return -1;
}

/* Three ids whose home is the last of 16 slots fill slots 15, 0 and 1.
 * Removing the first must move the other two back across the end. */
static void test_wrapping_run(void) {
  static object wrap[3];
  apig_idmap probe;
  apig_idmap_init(&probe, offsetof(object, id));
  int found = 0;
  for (int n = 0; found < 3 && n < 100000; n++) {
    object *candidate = &wrap[found];
    snprintf(candidate->id, sizeof candidate->id, "wrap-%d", n);
    CHECK_INT(apig_idmap_put(&probe, candidate), 0);
    CHECK_INT(probe.mask, 15);
    if (slot_of(&probe, candidate) == 15)
      found++;
    apig_idmap_remove(&probe, candidate->id);
  }
  CHECK_INT(found, 3);
  apig_idmap_free(&probe);

  apig_idmap map;
  apig_idmap_init(&map, offsetof(object, id));
  for (int i = 0; i < 3; i++)
    CHECK_INT(apig_idmap_put(&map, &wrap[i]), 0);
  CHECK_INT(slot_of(&map, &wrap[0]), 15);
  CHECK_INT(slot_of(&map, &wrap[1]), 0);
  CHECK_INT(slot_of(&map, &wrap[2]), 1);
  CHECK(apig_idmap_remove(&map, wrap[0].id) == &wrap[0]);
  CHECK_INT(slot_of(&map, &wrap[1]), 15);
  CHECK_INT(slot_of(&map, &wrap[2]), 0);
  CHECK(apig_idmap_get(&map, wrap[1].id) == &wrap[1]);
  CHECK(apig_idmap_get(&map, wrap[2].id) == &wrap[2]);
  CHECK(apig_idmap_get(&map, wrap[0].id) == NULL);
  apig_idmap_free(&map);
}

int main(void) {
  test_empty();
  test_wrapping_run();
  test_random_changes();
  test_fill_and_empty();
  return test_report("test_idmap");
}
