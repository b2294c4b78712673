/* The request handlers, their call context and the helpers they share. */
#ifndef APIG_HANDLER_H
#define APIG_HANDLER_H

#include <cjson/cJSON.h>

#include "apig_impl.h"

#define APIG_MAX_QUERY_PARAMS 64

typedef struct apig_param {
  char *key, *value; /* percent-decoded, NUL-terminated */
  size_t key_len, value_len;
} apig_param;

/* One call in progress: routing and authentication are done. */
typedef struct apig_call {
  apig_t *apig;
  const apig_req *req;
  apig_reply *reply;
  const char *project_id, *instance_id;
  apig_instance *inst;  /* NULL only for routes outside an instance */
  const char *path_id;  /* the {id} segment, decoded, or NULL */
  apig_param params[APIG_MAX_QUERY_PARAMS];
  size_t param_count;
  char caller[128];
  int64_t now_ns;
} apig_call;

typedef void (*apig_handler_fn)(apig_call *call);

/* Query parameters. apig_query_count counts occurrences of key. */
size_t apig_query_count(const apig_call *call, const char *key);
const apig_param *apig_query(const apig_call *call, const char *key);

/* Reads offset and limit with the paging rules: offset default 0, negative
 * means 0; limit default 20, 0 or less means 20, above 500 means 500.
 * Returns 0, or -1 after answering 400 APIG.2012 for a non-integer. */
int apig_paging(apig_call *call, long *offset, long *limit);

/* Parses the body as one strict JSON object. Returns the tree, or NULL
 * after answering 400 APIG.2000. */
cJSON *apig_body_object(apig_call *call);

/* Commits ops: journal first, then memory. Returns 0, or -1 after
 * answering 500 APIG.9999 with the state unchanged. */
int apig_commit(apig_call *call, const apig_op *ops, size_t count);

/* The handlers, one per route. */
void apig_handle_batch(apig_call *call);
void apig_handle_env_list(apig_call *call);
void apig_handle_env_create(apig_call *call);
void apig_handle_env_update(apig_call *call);
void apig_handle_env_delete(apig_call *call);
void apig_handle_group_list(apig_call *call);
void apig_handle_group_create(apig_call *call);
void apig_handle_group_show(apig_call *call);
void apig_handle_group_update(apig_call *call);
void apig_handle_group_delete(apig_call *call);
void apig_handle_api_list(apig_call *call);
void apig_handle_api_create(apig_call *call);
void apig_handle_api_show(apig_call *call);
void apig_handle_api_update(apig_call *call);
void apig_handle_api_delete(apig_call *call);
void apig_handle_api_action(apig_call *call);
void apig_handle_version_list(apig_call *call);
void apig_handle_version_switch(apig_call *call);
void apig_handle_version_show(apig_call *call);
void apig_handle_version_delete(apig_call *call);
void apig_handle_runtime(apig_call *call);
void apig_handle_import(apig_call *call);

/* JSON renderings shared by handlers. Write answers carry fractional
 * times (APIG_TIME_NANO); list and show answers whole seconds. */
typedef enum apig_time_style { APIG_TIME_SECONDS, APIG_TIME_NANO } apig_time_style;

void apig_put_time(apig_buf *b, int64_t ns, apig_time_style style);
void apig_render_env(apig_buf *b, const apig_env *env, apig_time_style style);
void apig_render_group(apig_buf *b, const apig_group *group,
                       apig_time_style style);
void apig_render_api(apig_buf *b, const apig_instance *inst,
                     const apig_api *api, apig_time_style style);
void apig_render_version_item(apig_buf *b, const apig_instance *inst,
                              const apig_api_version *version);
/* The publish success item: publish_id, api_id, api_name, env_id, remark,
 * publish_time (fractional), version_id. */
void apig_render_publish_item(apig_buf *b, const apig_api *api,
                              const apig_api_env *slot);
/* A frozen definition with the fields of a version or runtime answer:
 * version_id, publish_time, run_env_id, run_env_name, publish_id. */
void apig_render_frozen(apig_buf *b, const apig_instance *inst,
                        const apig_api_version *version);

#endif
