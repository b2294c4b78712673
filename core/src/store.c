/* In-memory store: tables by id (uthash for the small ones, apig_idmap for
 * APIs and versions) and all-or-nothing changes.
 *
 * apig_store_apply runs in two passes. The check pass verifies that every op
 * fits the state as it will be when the op runs and allocates everything the
 * op needs; the commit pass links the prepared objects in and cannot fail.
 * So a change is either whole or absent, even when memory runs out.
 */
#include "store.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

apig_def *apig_def_new(const char *json, size_t len) {
  apig_def *def = apig_malloc(sizeof *def + len + 1);
  if (!def)
    return NULL;
  def->refs = 1;
  def->len = (uint32_t)len;
  memcpy(def->json, json, len);
  def->json[len] = '\0';
  return def;
}

apig_def *apig_def_ref(apig_def *def) {
  if (def)
    def->refs++;
  return def;
}

void apig_def_unref(apig_def *def) {
  if (def && --def->refs == 0)
    apig_free(def);
}

/* The reference count sits before the characters. */
typedef struct shared_head {
  size_t refs;
} shared_head;

char *apig_shared_new(const char *text) {
  size_t len = strlen(text);
  shared_head *head = apig_malloc(sizeof *head + len + 1);
  if (!head)
    return NULL;
  head->refs = 1;
  char *chars = (char *)(head + 1);
  memcpy(chars, text, len + 1);
  return chars;
}

char *apig_shared_ref(char *text) {
  if (text)
    ((shared_head *)text - 1)->refs++;
  return text;
}

void apig_shared_unref(char *text) {
  if (text && --((shared_head *)text - 1)->refs == 0)
    apig_free((shared_head *)text - 1);
}

void apig_store_init(apig_store *store) { store->instances = NULL; }

void apig_store_version_free(apig_api_version *version) {
  apig_shared_unref(version->remark);
  apig_def_unref(version->def);
  apig_free(version);
}

static void api_free_fields(apig_api *api) {
  apig_free(api->field_text);
  apig_def_unref(api->def);
}

void apig_store_api_free(apig_api *api) {
  for (size_t i = 0; i < api->env_count; i++)
    apig_shared_unref(api->envs[i].publish_remark);
  apig_free(api->envs);
  api_free_fields(api);
  apig_free(api);
}

static void version_free(void *version) { apig_store_version_free(version); }

static void instance_free(apig_instance *inst) {
  apig_idmap_each(&inst->versions, version_free);
  apig_idmap_free(&inst->versions);
  apig_api *api = inst->first_api;
  while (api) {
    apig_api *next = api->next;
    apig_store_api_free(api);
    api = next;
  }
  apig_idmap_free(&inst->apis);
  apig_group *group, *gtmp;
  HASH_ITER(hh, inst->groups, group, gtmp) {
    HASH_DEL(inst->groups, group);
    apig_free(group->name);
    apig_free(group->remark);
    apig_free(group);
  }
  apig_env *env, *etmp;
  HASH_ITER(hh, inst->envs, env, etmp) {
    HASH_DEL(inst->envs, env);
    apig_free(env->name);
    apig_free(env->remark);
    apig_free(env);
  }
  apig_free(inst->key);
  apig_free(inst->project_id);
  apig_free(inst->instance_id);
  apig_free(inst);
}

void apig_store_free(apig_store *store) {
  apig_instance *inst, *tmp;
  HASH_ITER(hh, store->instances, inst, tmp) {
    HASH_DEL(store->instances, inst);
    instance_free(inst);
  }
}

apig_instance *apig_store_instance(const apig_store *store,
                                   const char *project_id,
                                   const char *instance_id) {
  char key[512];
  int n = snprintf(key, sizeof key, "%s:%s", project_id, instance_id);
  if (n < 0 || (size_t)n >= sizeof key)
    return NULL;
  apig_instance *inst = NULL;
  HASH_FIND(hh, store->instances, key, (unsigned)n, inst);
  return inst;
}

apig_env *apig_instance_env(const apig_instance *inst, const char *id) {
  apig_env *env = NULL;
  HASH_FIND_STR(inst->envs, id, env);
  return env;
}

apig_env *apig_instance_env_by_name(const apig_instance *inst,
                                    const char *name) {
  for (apig_env *env = inst->envs; env; env = env->hh.next)
    if (strcmp(env->name, name) == 0)
      return env;
  return NULL;
}

apig_group *apig_instance_group(const apig_instance *inst, const char *id) {
  apig_group *group = NULL;
  HASH_FIND_STR(inst->groups, id, group);
  return group;
}

apig_api *apig_instance_api(const apig_instance *inst, const char *id) {
  return apig_idmap_get(&inst->apis, id);
}

apig_api_version *apig_instance_version(const apig_instance *inst,
                                    const char *id) {
  return apig_idmap_get(&inst->versions, id);
}

unsigned apig_instance_env_count(const apig_instance *inst) {
  return HASH_COUNT(inst->envs);
}

apig_api_env *apig_api_slot(const apig_api *api, const char *env_id) {
  for (size_t i = 0; i < api->env_count; i++)
    if (strcmp(api->envs[i].env_id, env_id) == 0)
      return &api->envs[i];
  return NULL;
}

size_t apig_api_publications(const apig_api *api, apig_api_env **out,
                             size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < api->env_count && n < max; i++) {
    apig_api_env *slot = &api->envs[i];
    if (!slot->effective)
      continue;
    /* Insertion sort, newest publication first: n is small. */
    size_t at = n++;
    while (at > 0 && out[at - 1]->publish_ns < slot->publish_ns) {
      out[at] = out[at - 1];
      at--;
    }
    out[at] = slot;
  }
  return n;
}

void apig_store_count(const apig_store *store, apig_store_counts *counts) {
  memset(counts, 0, sizeof *counts);
  for (apig_instance *inst = store->instances; inst; inst = inst->hh.next) {
    counts->instances++;
    counts->envs += HASH_COUNT(inst->envs);
    counts->groups += HASH_COUNT(inst->groups);
    counts->apis += inst->apis.count;
    counts->versions += inst->versions.count;
    /* Each environment counts the APIs online in it, so this stays cheap
     * for a large catalogue. */
    for (apig_env *env = inst->envs; env; env = env->hh.next)
      counts->publications += env->published_count;
  }
}
