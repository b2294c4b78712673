/* The state of every instance: environments, groups, APIs, publications and
 * versions, held in memory with O(1) lookups by id.
 *
 * Readers use the lookup functions and the structs directly; pointers stay
 * valid until the next change. Every change is an apig_op: handlers build a
 * list of ops, the journal records it, and apig_store_apply applies it as one
 * atomic step. Replaying the same ops in the same order rebuilds the same
 * state, which is how the journal restores it after a restart. A second
 * backend implements the same lookups and the same ops.
 */
#ifndef APIG_STORE_H
#define APIG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "idmap.h"
#include "util.h"

#define APIG_MAX_VERSIONS 10 /* kept per (API, environment) */
#define APIG_ENV_ID_MAX 64
#define APIG_RELEASE_ENV_ID "DEFAULT_ENVIRONMENT_RELEASE_ID"
#define APIG_RELEASE_ENV_NAME "RELEASE"

/* Immutable, reference-counted JSON object text of an API definition: the
 * editable fields only, without id, times or publication fields. Versions
 * share the blob of the definition they froze. */
typedef struct apig_def {
  uint32_t refs;
  uint32_t len;
  char json[];
} apig_def;

apig_def *apig_def_new(const char *json, size_t len);
apig_def *apig_def_ref(apig_def *def);
void apig_def_unref(apig_def *def);

/* Immutable reference-counted strings for the remarks of versions and
 * publications: a batch gives one remark to many of them. The pointer is
 * to the characters, so readers use it as a plain string. */
char *apig_shared_new(const char *text);
char *apig_shared_ref(char *text);
void apig_shared_unref(char *text);

struct apig_api_env;

typedef struct apig_api_version {
  char id[APIG_ID_LEN + 1];
  int64_t publish_ns;
  char *remark; /* shared string */
  apig_def *def;
  struct apig_api *api;
  struct apig_api_env *slot;
} apig_api_version;

/* History and publication of one API in one environment. */
typedef struct apig_api_env {
  char env_id[APIG_ENV_ID_MAX + 1];
  apig_api_version *versions[APIG_MAX_VERSIONS]; /* newest first */
  int version_count;
  apig_api_version *effective; /* NULL while offline */
  char publish_id[APIG_ID_LEN + 1];
  int64_t publish_ns; /* time of the last publish or switch */
  char *publish_remark; /* shared string */
} apig_api_env;

typedef struct apig_group {
  char id[APIG_ID_LEN + 1];
  char *name;
  char *remark;
  int64_t register_ns, update_ns;
  unsigned api_count;
  struct apig_api *first_api, *last_api; /* its APIs, oldest first */
  UT_hash_handle hh;
} apig_group;

typedef struct apig_env {
  char id[APIG_ENV_ID_MAX + 1];
  char *name;
  char *remark;
  int64_t create_ns;
  unsigned published_count; /* APIs online here */
  UT_hash_handle hh;
} apig_env;

typedef struct apig_api {
  char id[APIG_ID_LEN + 1];
  apig_group *group;
  struct apig_api *group_prev, *group_next; /* list of the group's APIs */
  /* Fields copied out of def for filters and policy views; the strings
   * live in field_text, one allocation. */
  char *field_text;
  const char *name, *req_method, *req_uri, *auth_type, *req_protocol;
  const char *backend_type, *remark;
  int type;
  apig_def *def;
  int64_t register_ns, update_ns;
  apig_api_env *envs; /* one per environment it was ever published to */
  size_t env_count, env_cap;
  struct apig_api *prev, *next; /* the instance's APIs, oldest first */
} apig_api;

typedef struct apig_instance {
  char *key; /* "project_id:instance_id" */
  char *project_id, *instance_id;
  int64_t create_ns;
  apig_env *envs;
  apig_group *groups;
  apig_idmap apis;     /* apig_api by id */
  apig_api *first_api, *last_api;
  apig_idmap versions; /* apig_api_version by id */
  UT_hash_handle hh;
} apig_instance;

typedef struct apig_store {
  apig_instance *instances;
} apig_store;

typedef enum apig_op_kind {
  APIG_OP_INSTANCE_CREATE,
  APIG_OP_ENV_PUT,
  APIG_OP_ENV_DELETE,
  APIG_OP_GROUP_PUT,
  APIG_OP_GROUP_DELETE,
  APIG_OP_API_PUT,
  APIG_OP_API_DELETE,
  APIG_OP_PUBLISH,
  APIG_OP_OFFLINE,
  APIG_OP_SWITCH,
  APIG_OP_VERSION_DELETE
} apig_op_kind;

/* One change. Strings are borrowed from the builder until apply returns.
 * `def` is a JSON object text: the definition for API_PUT, and for PUBLISH
 * the frozen definition when it differs from the API's current one (only
 * snapshots need that). Unused fields are NULL/0. */
typedef struct apig_op {
  apig_op_kind kind;
  const char *project_id, *instance_id;
  const char *id;       /* env, group or API id; version id for SWITCH and
                           VERSION_DELETE */
  const char *env_id;   /* PUBLISH, OFFLINE */
  const char *group_id; /* API_PUT */
  const char *name, *remark;
  const char *def;
  size_t def_len;
  const char *version_id, *publish_id; /* PUBLISH */
  /* PUBLISH from a request: the API the handler found, which the store
   * then need not look up again. Its version_id comes fresh from the
   * random source, so the check for a duplicate id is skipped. NULL for
   * ops read back from files, which get every check. */
  struct apig_api *api_hint;
  /* PUBLISH from a request: remark as a shared string (apig_shared_new),
   * which the store references instead of copying. */
  char *remark_shared;
  int64_t time_ns, time2_ns; /* create/register/publish; update */
} apig_op;

void apig_store_init(apig_store *store);
/* Frees one version or API object; the caller has unlinked it. */
void apig_store_version_free(apig_api_version *version);
void apig_store_api_free(apig_api *api);
void apig_store_free(apig_store *store);

/* Applies ops[0..count) all or nothing. Returns 0, or -1 when memory ran
 * out or an op does not fit the state (the state is then unchanged). */
int apig_store_apply(apig_store *store, const apig_op *ops, size_t count);

apig_instance *apig_store_instance(const apig_store *store,
                                   const char *project_id,
                                   const char *instance_id);
apig_env *apig_instance_env(const apig_instance *inst, const char *id);
apig_env *apig_instance_env_by_name(const apig_instance *inst,
                                    const char *name);
apig_group *apig_instance_group(const apig_instance *inst, const char *id);
apig_api *apig_instance_api(const apig_instance *inst, const char *id);
apig_api_version *apig_instance_version(const apig_instance *inst,
                                    const char *id);
unsigned apig_instance_env_count(const apig_instance *inst);

/* The history slot of api in env_id, or NULL. */
apig_api_env *apig_api_slot(const apig_api *api, const char *env_id);

/* Fills out with the API's current publications, newest first; returns
 * how many (at most max). */
size_t apig_api_publications(const apig_api *api, apig_api_env **out,
                             size_t max);

/* Counts, for a quick summary and metrics. */
typedef struct apig_store_counts {
  size_t instances, envs, groups, apis, versions, publications;
} apig_store_counts;
void apig_store_count(const apig_store *store, apig_store_counts *counts);

#endif
