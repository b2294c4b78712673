/* The per-API steps of publishing and taking offline, shared by the batch
 * call and the single-API call. */
#ifndef APIG_PUBLISH_H
#define APIG_PUBLISH_H

#include "handler.h"

typedef enum apig_action { APIG_ACTION_ONLINE, APIG_ACTION_OFFLINE } apig_action;

/* One API's planned change, or the reason it fails. */
typedef struct apig_staged {
  apig_api *api;     /* NULL when the id is unknown */
  const char *api_id; /* as requested; borrowed */
  char env_id[APIG_ENV_ID_MAX + 1];
  char *remark; /* shared string (apig_shared_new), owned */
  char version_id[APIG_ID_LEN + 1];
  char publish_id[APIG_ID_LEN + 1];
  apig_error error; /* APIG_E_OK when it succeeds */
  char message[512]; /* failure message when error is not OK */
  char error_code[16]; /* a policy's own APIG code, or "" */
} apig_staged;

/* The request-wide part of a publish or offline. */
typedef struct apig_publish_request {
  apig_call *call;
  apig_action action;
  const char *env_id; /* NULL when the request has none */
  const char *remark; /* never NULL */
  const char *group_id; /* set: an API outside this group is not found */
  long batch_size;
  /* The remark as a shared string that every staged API references, or
   * NULL for each to make its own. */
  char *remark_shared;
} apig_publish_request;

/* Runs the per-API steps (environment mapping, authorization, remark
 * rewriting, the online/offline check) for api_id and fills staged. */
void apig_stage_api(const apig_publish_request *request, const char *api_id,
                    apig_staged *staged);

/* Fills op with the change staged describes; staged must have succeeded. */
void apig_staged_op(const apig_publish_request *request,
                    const apig_staged *staged, apig_op *op);

void apig_staged_free(apig_staged *staged);

/* The success item of a take-offline: api_id, api_name, env_id and the
 * version_id taken offline. */
void apig_render_offline_item(apig_buf *b, const apig_staged *staged);

/* Does the instance use an environment mapping hook? */
int apig_has_env_mapping(const apig_t *apig);

#endif
