/* Changes to the in-memory store: each op is prepared (everything it needs
 * is allocated) before any op is committed, so a change applies whole or
 * not at all. Handlers validate ops against the state first; an op that
 * still does not fit (a damaged journal, say) makes apply fail unchanged.
 */
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "def_fields.h"
#include "store.h"

/* An API definition and the fields the store keeps outside it. */
typedef struct api_fields {
  apig_def_fields read;
  apig_def *def;
} api_fields;

typedef struct prepared {
  void *object; /* new instance, env, group, API or version */
  apig_api *api; /* PUBLISH: the API found at prepare, for the commit */
  char *name, *remark;
  char *publish_remark; /* PUBLISH: shared string */
  api_fields fields;
} prepared;

static void fields_free(api_fields *f) {
  apig_free(f->read.text);
  apig_def_unref(f->def);
  memset(f, 0, sizeof *f);
}

static int fields_prepare(api_fields *f, const char *def, size_t len) {
  if (apig_def_fields_read(&f->read, def, len) != 0)
    return -1;
  f->def = apig_def_new(def, len);
  const char *const *value = f->read.value;
  if (!f->def || !value[APIG_FIELD_NAME] || !value[APIG_FIELD_REQ_METHOD] ||
      !value[APIG_FIELD_REQ_URI]) {
    fields_free(f);
    return -1;
  }
  return 0;
}

static apig_instance *op_instance(const apig_store *store, const apig_op *op) {
  return apig_store_instance(store, op->project_id, op->instance_id);
}

/* The instance of the previous op: the ops of one list nearly always share
 * it, and finding it by key costs a formatted key and a hash lookup. */
typedef struct instance_cache {
  const char *project_id, *instance_id;
  apig_instance *inst;
} instance_cache;

/* What the prepare pass carries from one op to the next. */
typedef struct prepare_state {
  instance_cache instances;
  /* The shared remark of the previous PUBLISH op, not a reference of its
   * own: a prepared op keeps it alive. Ops read back from a file carry
   * each remark as text, so those of one batch share one string again. */
  char *remark;
} prepare_state;

static apig_instance *cached_instance(const apig_store *store,
                                      const apig_op *op, instance_cache *c) {
  if (c->inst && strcmp(c->project_id, op->project_id) == 0 &&
      strcmp(c->instance_id, op->instance_id) == 0)
    return c->inst;
  c->inst = op_instance(store, op);
  c->project_id = op->project_id;
  c->instance_id = op->instance_id;
  return c->inst;
}

static int prepare_instance(prepared *p, const apig_op *op) {
  apig_instance *inst = apig_calloc(1, sizeof *inst);
  apig_env *release = apig_calloc(1, sizeof *release);
  p->object = inst;
  if (!inst || !release) {
    apig_free(release);
    return -1;
  }
  inst->envs = release; /* parked here until commit */
  apig_idmap_init(&inst->apis, offsetof(apig_api, id));
  apig_idmap_init(&inst->versions, offsetof(apig_api_version, id));
  size_t plen = strlen(op->project_id), ilen = strlen(op->instance_id);
  inst->key = apig_malloc(plen + ilen + 2);
  inst->project_id = apig_strdup(op->project_id);
  inst->instance_id = apig_strdup(op->instance_id);
  release->name = apig_strdup(APIG_RELEASE_ENV_NAME);
  release->remark = apig_strdup("");
  if (!inst->key || !inst->project_id || !inst->instance_id ||
      !release->name || !release->remark)
    return -1;
  memcpy(inst->key, op->project_id, plen);
  inst->key[plen] = ':';
  memcpy(inst->key + plen + 1, op->instance_id, ilen + 1);
  strcpy(release->id, APIG_RELEASE_ENV_ID);
  release->create_ns = op->time_ns;
  inst->create_ns = op->time_ns;
  return 0;
}

static void discard_instance(apig_instance *inst) {
  if (!inst)
    return;
  apig_env *release = inst->envs;
  if (release) {
    apig_free(release->name);
    apig_free(release->remark);
    apig_free(release);
  }
  apig_idmap_free(&inst->apis);
  apig_idmap_free(&inst->versions);
  apig_free(inst->key);
  apig_free(inst->project_id);
  apig_free(inst->instance_id);
  apig_free(inst);
}

static int prepare_named(prepared *p, const apig_op *op, size_t size) {
  if (!op->id || strlen(op->id) > APIG_ENV_ID_MAX || !op->name)
    return -1;
  p->object = apig_calloc(1, size);
  p->name = apig_strdup(op->name);
  p->remark = apig_strdup(op->remark ? op->remark : "");
  return p->object && p->name && p->remark ? 0 : -1;
}

static int prepare_publish(prepared *p, const apig_store *store,
                           const apig_op *op, prepare_state *state) {
  apig_instance *inst = cached_instance(store, op, &state->instances);
  apig_api *api = !inst        ? NULL
                  : op->api_hint ? op->api_hint
                                 : apig_instance_api(inst, op->id);
  if (!api || !op->env_id || strlen(op->env_id) > APIG_ENV_ID_MAX ||
      !op->version_id || !op->publish_id || !apig_instance_env(inst, op->env_id))
    return -1;
  p->api = api;
  /* Room for one more history slot unless the API has one for env_id
   * already; growing capacity changes no state. */
  if (api->env_count == api->env_cap && !apig_api_slot(api, op->env_id)) {
    size_t cap = api->env_cap ? api->env_cap * 2 : 1;
    apig_api_env *envs = apig_realloc(api->envs, cap * sizeof *envs);
    if (!envs)
      return -1;
    api->envs = envs;
    api->env_cap = cap;
    /* The slots may have moved: point their versions at the new place. */
    for (size_t i = 0; i < api->env_count; i++)
      for (int k = 0; k < envs[i].version_count; k++)
        envs[i].versions[k]->slot = &envs[i];
  }
  apig_api_version *version = apig_calloc(1, sizeof *version);
  p->object = version;
  const char *text = op->remark ? op->remark : "";
  if (op->remark_shared)
    p->publish_remark = apig_shared_ref(op->remark_shared);
  else if (state->remark && strcmp(state->remark, text) == 0)
    p->publish_remark = apig_shared_ref(state->remark);
  else
    p->publish_remark = state->remark = apig_shared_new(text);
  if (!version || !p->publish_remark)
    return -1;
  version->remark = apig_shared_ref(p->publish_remark);
  if (op->def) {
    p->fields.def = apig_def_new(op->def, op->def_len);
    if (!p->fields.def)
      return -1;
  }
  return 0;
}

static int prepare_op(prepared *p, const apig_store *store, const apig_op *op,
                      prepare_state *state) {
  switch (op->kind) {
  case APIG_OP_INSTANCE_CREATE:
    return prepare_instance(p, op);
  case APIG_OP_ENV_PUT:
    return prepare_named(p, op, sizeof(apig_env));
  case APIG_OP_GROUP_PUT:
    return prepare_named(p, op, sizeof(apig_group));
  case APIG_OP_API_PUT:
    if (!op->id || strlen(op->id) > APIG_ID_LEN || !op->group_id)
      return -1;
    p->object = apig_calloc(1, sizeof(apig_api));
    if (!p->object)
      return -1;
    return fields_prepare(&p->fields, op->def, op->def_len);
  case APIG_OP_PUBLISH:
    return prepare_publish(p, store, op, state);
  default:
    return 0;
  }
}

static void discard_prepared(prepared *p, const apig_op *op) {
  if (op->kind == APIG_OP_INSTANCE_CREATE) {
    discard_instance(p->object);
  } else if (op->kind == APIG_OP_PUBLISH && p->object) {
    apig_api_version *version = p->object;
    apig_shared_unref(version->remark);
    apig_free(version);
  } else {
    apig_free(p->object);
  }
  apig_free(p->name);
  apig_free(p->remark);
  apig_shared_unref(p->publish_remark);
  fields_free(&p->fields);
  memset(p, 0, sizeof *p);
}

/* ---- commit: each function below only links prepared memory in ---- */

static int commit_instance(apig_store *store, const apig_op *op, prepared *p) {
  if (op_instance(store, op))
    return -1;
  apig_instance *inst = p->object;
  apig_env *release = inst->envs;
  inst->envs = NULL;
  HASH_ADD_STR(inst->envs, id, release);
  HASH_ADD_KEYPTR(hh, store->instances, inst->key, strlen(inst->key), inst);
  p->object = NULL;
  return 0;
}

static int commit_env_put(apig_instance *inst, const apig_op *op,
                          prepared *p) {
  apig_env *env = apig_instance_env(inst, op->id);
  if (env) {
    apig_free(env->name);
    apig_free(env->remark);
  } else {
    env = p->object;
    p->object = NULL;
    strcpy(env->id, op->id);
    env->create_ns = op->time_ns;
    HASH_ADD_STR(inst->envs, id, env);
  }
  env->name = p->name;
  env->remark = p->remark;
  p->name = p->remark = NULL;
  return 0;
}

static int commit_env_delete(apig_instance *inst, const apig_op *op) {
  apig_env *env = apig_instance_env(inst, op->id);
  if (!env || env->published_count > 0 ||
      strcmp(env->id, APIG_RELEASE_ENV_ID) == 0)
    return -1;
  HASH_DEL(inst->envs, env);
  apig_free(env->name);
  apig_free(env->remark);
  apig_free(env);
  return 0;
}

static int commit_group_put(apig_instance *inst, const apig_op *op,
                            prepared *p) {
  apig_group *group = apig_instance_group(inst, op->id);
  if (group) {
    apig_free(group->name);
    apig_free(group->remark);
  } else {
    if (strlen(op->id) > APIG_ID_LEN)
      return -1;
    group = p->object;
    p->object = NULL;
    strcpy(group->id, op->id);
    group->register_ns = op->time_ns;
    HASH_ADD_STR(inst->groups, id, group);
  }
  group->update_ns = op->time2_ns ? op->time2_ns : op->time_ns;
  group->name = p->name;
  group->remark = p->remark;
  p->name = p->remark = NULL;
  return 0;
}

static int commit_group_delete(apig_instance *inst, const apig_op *op) {
  apig_group *group = apig_instance_group(inst, op->id);
  if (!group || group->api_count > 0)
    return -1;
  HASH_DEL(inst->groups, group);
  apig_free(group->name);
  apig_free(group->remark);
  apig_free(group);
  return 0;
}

static void group_link(apig_group *group, apig_api *api) {
  api->group = group;
  api->group_prev = group->last_api;
  api->group_next = NULL;
  if (group->last_api)
    group->last_api->group_next = api;
  else
    group->first_api = api;
  group->last_api = api;
  group->api_count++;
}

static void group_unlink(apig_api *api) {
  apig_group *group = api->group;
  if (api->group_prev)
    api->group_prev->group_next = api->group_next;
  else
    group->first_api = api->group_next;
  if (api->group_next)
    api->group_next->group_prev = api->group_prev;
  else
    group->last_api = api->group_prev;
  group->api_count--;
  api->group_prev = api->group_next = NULL;
}

static int commit_api_put(apig_instance *inst, const apig_op *op,
                          prepared *p) {
  apig_group *group = apig_instance_group(inst, op->group_id);
  if (!group)
    return -1;
  apig_api *api = apig_instance_api(inst, op->id);
  if (api) {
    apig_free(api->field_text);
    apig_def_unref(api->def);
    if (api->group != group) {
      group_unlink(api);
      group_link(group, api);
    }
  } else {
    api = p->object;
    strcpy(api->id, op->id);
    if (apig_idmap_put(&inst->apis, api) != 0)
      return -1;
    p->object = NULL;
    api->register_ns = op->time_ns;
    api->prev = inst->last_api;
    if (inst->last_api)
      inst->last_api->next = api;
    else
      inst->first_api = api;
    inst->last_api = api;
    group_link(group, api);
  }
  api->update_ns = op->time2_ns ? op->time2_ns : op->time_ns;
  const char *const *value = p->fields.read.value;
  api->field_text = p->fields.read.text;
  api->name = value[APIG_FIELD_NAME];
  api->req_method = value[APIG_FIELD_REQ_METHOD];
  api->req_uri = value[APIG_FIELD_REQ_URI];
  api->auth_type = value[APIG_FIELD_AUTH_TYPE];
  api->req_protocol = value[APIG_FIELD_REQ_PROTOCOL];
  api->backend_type = value[APIG_FIELD_BACKEND_TYPE];
  api->remark = value[APIG_FIELD_REMARK];
  api->type = p->fields.read.type;
  api->def = p->fields.def;
  memset(&p->fields, 0, sizeof p->fields);
  return 0;
}

static void drop_version(apig_instance *inst, apig_api_version *version) {
  apig_idmap_remove(&inst->versions, version->id);
  apig_store_version_free(version);
}

static int commit_api_delete(apig_instance *inst, const apig_op *op) {
  apig_api *api = apig_instance_api(inst, op->id);
  if (!api)
    return -1;
  for (size_t i = 0; i < api->env_count; i++)
    if (api->envs[i].effective)
      return -1;
  for (size_t i = 0; i < api->env_count; i++)
    for (int k = 0; k < api->envs[i].version_count; k++)
      drop_version(inst, api->envs[i].versions[k]);
  group_unlink(api);
  apig_idmap_remove(&inst->apis, api->id);
  if (api->prev)
    api->prev->next = api->next;
  else
    inst->first_api = api->next;
  if (api->next)
    api->next->prev = api->prev;
  else
    inst->last_api = api->prev;
  for (size_t i = 0; i < api->env_count; i++)
    apig_shared_unref(api->envs[i].publish_remark);
  apig_free(api->envs);
  api->envs = NULL;
  api->env_count = 0;
  apig_store_api_free(api);
  return 0;
}

/* Takes the room prepare_publish made. Prepare makes room for one new slot
 * per op, so two ops of one list that add slots to the same API find it
 * taken: NULL then, and the commit fails instead of writing past the end. */
static apig_api_env *new_slot(apig_api *api, const char *env_id) {
  if (api->env_count == api->env_cap)
    return NULL;
  apig_api_env *slot = &api->envs[api->env_count++];
  memset(slot, 0, sizeof *slot);
  strcpy(slot->env_id, env_id);
  return slot;
}

/* Removes versions[index] from the history of slot. */
static void slot_remove(apig_instance *inst, apig_api_env *slot, int index) {
  apig_api_version *version = slot->versions[index];
  memmove(&slot->versions[index], &slot->versions[index + 1],
          (size_t)(slot->version_count - index - 1) * sizeof version);
  slot->version_count--;
  if (slot->effective == version)
    slot->effective = NULL;
  drop_version(inst, version);
}

static int commit_publish(apig_instance *inst, const apig_op *op,
                          prepared *p) {
  apig_api *api = p->api ? p->api : apig_instance_api(inst, op->id);
  apig_env *env = apig_instance_env(inst, op->env_id);
  if (!api || !env ||
      (!op->api_hint && apig_instance_version(inst, op->version_id)))
    return -1;
  apig_api_env *slot = apig_api_slot(api, op->env_id);
  if (!slot && api->env_count == api->env_cap)
    return -1; /* see new_slot */
  apig_api_version *version = p->object;
  strcpy(version->id, op->version_id);
  if (apig_idmap_put(&inst->versions, version) != 0)
    return -1;
  p->object = NULL;
  if (!slot)
    slot = new_slot(api, op->env_id);
  if (slot->version_count == APIG_MAX_VERSIONS) {
    /* Drop the oldest version that is not the effective one. */
    int oldest = slot->version_count - 1;
    while (slot->versions[oldest] == slot->effective)
      oldest--;
    slot_remove(inst, slot, oldest);
  }
  version->publish_ns = op->time_ns;
  apig_def *frozen = p->fields.def;
  if (frozen && !(frozen->len == api->def->len &&
                  memcmp(frozen->json, api->def->json, frozen->len) == 0)) {
    version->def = frozen;
    p->fields.def = NULL;
  } else {
    version->def = apig_def_ref(api->def);
  }
  version->api = api;
  version->slot = slot;
  memmove(&slot->versions[1], &slot->versions[0],
          (size_t)slot->version_count * sizeof version);
  slot->versions[0] = version;
  slot->version_count++;
  if (!slot->effective) {
    env->published_count++;
    strcpy(slot->publish_id, op->publish_id);
  }
  slot->effective = version;
  slot->publish_ns = op->time_ns;
  apig_shared_unref(slot->publish_remark);
  slot->publish_remark = p->publish_remark;
  p->publish_remark = NULL;
  return 0;
}

static void take_offline(apig_instance *inst, apig_api_env *slot) {
  apig_env *env = apig_instance_env(inst, slot->env_id);
  if (env && env->published_count > 0)
    env->published_count--;
  slot->effective = NULL;
  slot->publish_id[0] = '\0';
}

static int commit_offline(apig_instance *inst, const apig_op *op) {
  apig_api *api = apig_instance_api(inst, op->id);
  apig_api_env *slot = api ? apig_api_slot(api, op->env_id) : NULL;
  if (!slot || !slot->effective)
    return -1;
  take_offline(inst, slot);
  return 0;
}

static int commit_switch(apig_instance *inst, const apig_op *op) {
  apig_api_version *version = apig_instance_version(inst, op->id);
  if (!version)
    return -1;
  apig_api_env *slot = version->slot;
  if (!slot->effective) {
    /* Switching an offline API's version publishes it again. */
    if (!op->publish_id)
      return -1;
    strcpy(slot->publish_id, op->publish_id);
    apig_env *env = apig_instance_env(inst, slot->env_id);
    if (env)
      env->published_count++;
  }
  slot->effective = version;
  slot->publish_ns = op->time_ns;
  return 0;
}

static int commit_version_delete(apig_instance *inst, const apig_op *op) {
  apig_api_version *version = apig_instance_version(inst, op->id);
  if (!version)
    return -1;
  apig_api_env *slot = version->slot;
  if (slot->effective == version) {
    take_offline(inst, slot);
    return 0;
  }
  for (int i = 0; i < slot->version_count; i++)
    if (slot->versions[i] == version) {
      slot_remove(inst, slot, i);
      return 0;
    }
  return -1;
}

static int commit_op(apig_store *store, const apig_op *op, prepared *p,
                     instance_cache *cache) {
  if (op->kind == APIG_OP_INSTANCE_CREATE)
    return commit_instance(store, op, p);
  apig_instance *inst = cached_instance(store, op, cache);
  if (!inst)
    return -1;
  switch (op->kind) {
  case APIG_OP_ENV_PUT:
    return commit_env_put(inst, op, p);
  case APIG_OP_ENV_DELETE:
    return commit_env_delete(inst, op);
  case APIG_OP_GROUP_PUT:
    return commit_group_put(inst, op, p);
  case APIG_OP_GROUP_DELETE:
    return commit_group_delete(inst, op);
  case APIG_OP_API_PUT:
    return commit_api_put(inst, op, p);
  case APIG_OP_API_DELETE:
    return commit_api_delete(inst, op);
  case APIG_OP_PUBLISH:
    return commit_publish(inst, op, p);
  case APIG_OP_OFFLINE:
    return commit_offline(inst, op);
  case APIG_OP_SWITCH:
    return commit_switch(inst, op);
  case APIG_OP_VERSION_DELETE:
    return commit_version_delete(inst, op);
  default:
    return -1;
  }
}

/* Starts loading the index slots, then the objects, that the ops look up,
 * so that a long list (a batch, a file record) waits for their cache
 * misses together rather than one after another. */
static void prefetch_lookups(const apig_store *store, const apig_op *ops,
                             size_t count) {
  if (count < 8)
    return;
  for (int item = 0; item <= 1; item++) {
    instance_cache cache = {0};
    for (size_t i = 0; i < count; i++) {
      const apig_op *op = &ops[i];
      if (op->kind == APIG_OP_INSTANCE_CREATE || !op->id)
        continue;
      apig_instance *inst = cached_instance(store, op, &cache);
      if (!inst)
        continue;
      switch (op->kind) {
      case APIG_OP_PUBLISH:
        if (!op->api_hint)
          apig_idmap_prefetch(&inst->apis, op->id, item);
        if (op->version_id)
          apig_idmap_prefetch(&inst->versions, op->version_id, item);
        break;
      case APIG_OP_API_PUT:
      case APIG_OP_API_DELETE:
      case APIG_OP_OFFLINE:
        apig_idmap_prefetch(&inst->apis, op->id, item);
        break;
      case APIG_OP_SWITCH:
      case APIG_OP_VERSION_DELETE:
        apig_idmap_prefetch(&inst->versions, op->id, item);
        break;
      default:
        break;
      }
    }
  }
}

static int same_instance(const apig_op *a, const apig_op *b) {
  return strcmp(a->project_id, b->project_id) == 0 &&
         strcmp(a->instance_id, b->instance_id) == 0;
}

/* The instance that ops[first..end) work on: the one that the last op of
 * the list up to end creates, or else the one in the store. */
static apig_instance *list_instance(const apig_store *store,
                                    const apig_op *ops, const prepared *all,
                                    size_t first, size_t end) {
  for (size_t k = end; k-- > 0;)
    if (ops[k].kind == APIG_OP_INSTANCE_CREATE &&
        same_instance(&ops[k], &ops[first]))
      return all[k].object;
  return op_instance(store, &ops[first]);
}

/* Grows the id indexes of each instance the ops add APIs or versions to,
 * so that the commits that add them cannot run out of memory. The ops
 * come in runs that share an instance; a batch is a single run. */
static int reserve_indexes(const apig_store *store, const apig_op *ops,
                           const prepared *all, size_t count) {
  apig_instance *done[16];
  size_t done_count = 0;
  size_t first = 0;
  while (first < count) {
    size_t end = first + 1;
    while (end < count && same_instance(&ops[end], &ops[first]))
      end++;
    apig_instance *inst = list_instance(store, ops, all, first, end);
    int seen = 0;
    for (size_t k = 0; k < done_count; k++)
      seen |= done[k] == inst;
    if (inst && !seen) {
      size_t apis = 0, versions = 0;
      for (size_t k = first; k < count; k++)
        if (same_instance(&ops[k], &ops[first])) {
          apis += ops[k].kind == APIG_OP_API_PUT;
          versions += ops[k].kind == APIG_OP_PUBLISH;
        }
      if (apig_idmap_reserve(&inst->apis, apis) != 0 ||
          apig_idmap_reserve(&inst->versions, versions) != 0)
        return -1;
      if (done_count < sizeof done / sizeof done[0])
        done[done_count++] = inst;
    }
    first = end;
  }
  return 0;
}

int apig_store_apply(apig_store *store, const apig_op *ops, size_t count) {
  prepared one;
  prepared *all = count == 1 ? &one : apig_calloc(count, sizeof *all);
  if (!all)
    return -1;
  memset(all, 0, count == 1 ? sizeof one : 0);
  int rc = 0;
  size_t done = 0;
  prefetch_lookups(store, ops, count);
  prepare_state state = {0};
  for (; done < count; done++)
    if (prepare_op(&all[done], store, &ops[done], &state) != 0) {
      done++;
      rc = -1;
      break;
    }
  if (rc == 0 && reserve_indexes(store, ops, all, count) != 0)
    rc = -1;
  /* An API found at prepare stays valid through the commits unless an op
   * of the list deletes an API. */
  int deletes_api = 0;
  for (size_t i = 0; i < count; i++)
    deletes_api |= ops[i].kind == APIG_OP_API_DELETE;
  for (size_t i = 0; deletes_api && i < done; i++)
    all[i].api = NULL;
  /* Handlers have validated every op against the state, so a commit that
   * fails means the caller broke that contract; it is reported, and the
   * ops committed before it stay. */
  instance_cache cache = {0};
  for (size_t i = 0; rc == 0 && i < count; i++) {
    if (commit_op(store, &ops[i], &all[i], &cache) != 0)
      rc = -2;
    if (ops[i].kind == APIG_OP_INSTANCE_CREATE)
      cache.inst = NULL;
  }
  for (size_t i = 0; i < done; i++)
    discard_prepared(&all[i], &ops[i]);
  if (all != &one)
    apig_free(all);
  return rc;
}
