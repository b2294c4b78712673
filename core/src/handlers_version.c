/* Calls on one API's publications: publish or take offline one API, switch,
 * show and take offline a version, and show the runtime definition.
 *
 * Publishing one API runs the same per-API steps as the batch call
 * (environment mapping, authorization and remark rewriting by the policy),
 * but reports a failure as a top-level error instead of a failure item.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "publish.h"

/* The body of POST …/apis/action. */
typedef struct action_body {
  apig_action action;
  const char *env_id; /* NULL when absent or empty */
  const char *api_id;
  const char *remark; /* "" when absent */
} action_body;

/* Reads the string fields of body; another type gets 400 APIG.2011
 * naming the field. Returns 0 or -1. */
static int read_strings(apig_call *call, const cJSON *body,
                        const char *keys[], const char **values[]) {
  for (int i = 0; keys[i]; i++) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(body, keys[i]);
    if (item && !cJSON_IsString(item)) {
      apig_reply_error(call->reply, APIG_E_PARAM_INVALID, keys[i]);
      return -1;
    }
    *values[i] = item ? item->valuestring : NULL;
  }
  return 0;
}

static int read_action_body(apig_call *call, const cJSON *body,
                            action_body *out) {
  const char *action;
  const char *keys[] = {"action", "env_id", "api_id", "remark", NULL};
  const char **values[] = {&action, &out->env_id, &out->api_id,
                           &out->remark};
  if (read_strings(call, body, keys, values) != 0)
    return -1;
  if (!action) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "action");
    return -1;
  }
  if (strcmp(action, "online") == 0) {
    out->action = APIG_ACTION_ONLINE;
  } else if (strcmp(action, "offline") == 0) {
    out->action = APIG_ACTION_OFFLINE;
  } else {
    apig_reply_error(call->reply, APIG_E_ACTION_INVALID);
    return -1;
  }
  if (out->env_id && !out->env_id[0])
    out->env_id = NULL;
  if (!out->env_id && !apig_has_env_mapping(call->apig)) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "env_id");
    return -1;
  }
  if (!out->api_id || !out->api_id[0]) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "api_id");
    return -1;
  }
  if (!out->remark)
    out->remark = "";
  long chars = apig_utf8_count(out->remark, strlen(out->remark));
  if (chars < 0 || chars > 255) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID, "remark");
    return -1;
  }
  return 0;
}

/* Replies with the failure of a staged API as a top-level error: the
 * status of its error, and the policy's own code when it gave one. */
static void reply_staged_error(apig_call *call, const apig_staged *staged) {
  apig_reply *reply = call->reply;
  reply->status = apig_error_status(staged->error);
  reply->content_type = NULL;
  apig_buf_reset(&reply->body);
  apig_buf_puts(&reply->body, "{\"error_code\":");
  apig_buf_json_cstr(&reply->body, staged->error_code[0]
                                       ? staged->error_code
                                       : apig_error_code(staged->error));
  apig_buf_puts(&reply->body, ",\"error_msg\":");
  apig_buf_json_cstr(&reply->body, staged->message);
  apig_buf_putc(&reply->body, '}');
}

/* Stages and commits one API's change, and replies with its item. */
static void run_action(apig_call *call, const action_body *body) {
  apig_publish_request request = {call, body->action, body->env_id,
                                  body->remark, NULL, 1, NULL};
  apig_staged staged;
  apig_stage_api(&request, body->api_id, &staged);
  if (staged.error != APIG_E_OK) {
    reply_staged_error(call, &staged);
    goto done;
  }
  apig_op op;
  apig_staged_op(&request, &staged, &op);
  if (apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 201;
  apig_buf_reset(&call->reply->body);
  if (body->action == APIG_ACTION_OFFLINE)
    apig_render_offline_item(&call->reply->body, &staged);
  else
    apig_render_publish_item(&call->reply->body, staged.api,
                             apig_api_slot(staged.api, staged.env_id));
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "API %s %s in environment %s by %s (version %s)", staged.api->id,
            body->action == APIG_ACTION_ONLINE ? "published" : "taken offline",
            staged.env_id, call->caller, staged.version_id);
done:
  apig_staged_free(&staged);
}

/* POST …/apis/action: {"action", "env_id", "api_id", "remark"}. */
void apig_handle_api_action(apig_call *call) {
  cJSON *root = apig_body_object(call);
  if (!root)
    return;
  action_body body;
  if (read_action_body(call, root, &body) != 0)
    goto done;
  if (body.env_id && !apig_has_env_mapping(call->apig) &&
      !apig_instance_env(call->inst, body.env_id)) {
    apig_reply_error(call->reply, APIG_E_ENV_NOT_FOUND, body.env_id);
    goto done;
  }
  if (!apig_instance_api(call->inst, body.api_id)) {
    apig_reply_error(call->reply, APIG_E_API_NOT_FOUND, body.api_id);
    goto done;
  }
  run_action(call, &body);
done:
  cJSON_Delete(root);
}

/* Reads "version_id" of the body. Returns NULL after replying 400. */
static const char *read_version_id(apig_call *call, const cJSON *body) {
  const char *version_id;
  const char *keys[] = {"version_id", NULL};
  const char **values[] = {&version_id};
  if (read_strings(call, body, keys, values) != 0)
    return NULL;
  if (!version_id || !version_id[0]) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "version_id");
    return NULL;
  }
  return version_id;
}

/* PUT …/apis/publish/{api_id}: makes a version of that API the effective
 * one in the version's environment. A version of an API that is offline
 * there publishes it again, with a new publish_id.
 * NOTE: no policy hook runs here, because the version was published (and
 * authorized) before; only the publish permission is checked. */
void apig_handle_version_switch(apig_call *call) {
  apig_api *api = apig_instance_api(call->inst, call->path_id);
  if (!api) {
    apig_reply_error(call->reply, APIG_E_API_NOT_FOUND, call->path_id);
    return;
  }
  cJSON *root = apig_body_object(call);
  if (!root)
    return;
  const char *version_id = read_version_id(call, root);
  if (!version_id)
    goto done;
  apig_api_version *version = apig_instance_version(call->inst, version_id);
  if (!version || version->api != api) {
    apig_reply_error(call->reply, APIG_E_VERSION_NOT_FOUND, version_id);
    goto done;
  }

  apig_api_env *slot = version->slot;
  if (!apig_instance_env(call->inst, slot->env_id)) {
    apig_reply_error(call->reply, APIG_E_ENV_NOT_FOUND, slot->env_id);
    goto done;
  }
  char id[APIG_ID_LEN + 1], publish_id[APIG_ID_LEN + 1];
  snprintf(id, sizeof id, "%s", version->id);
  apig_op op = {.kind = APIG_OP_SWITCH,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id,
                .time_ns = call->now_ns};
  if (!slot->effective) {
    if (apig_new_id(publish_id) != 0) {
      apig_reply_error(call->reply, APIG_E_SYSTEM);
      goto done;
    }
    op.publish_id = publish_id;
  }

  if (apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 200;
  apig_render_publish_item(&call->reply->body, api, slot);
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "API %s switched to version %s in environment %s by %s", api->id,
            id, slot->env_id, call->caller);
done:
  cJSON_Delete(root);
}

/* GET …/apis/versions/{version_id}. */
void apig_handle_version_show(apig_call *call) {
  apig_api_version *version =
      apig_instance_version(call->inst, call->path_id);
  if (!version) {
    apig_reply_error(call->reply, APIG_E_VERSION_NOT_FOUND, call->path_id);
    return;
  }
  call->reply->status = 200;
  apig_render_frozen(&call->reply->body, call->inst, version);
}

/* DELETE …/apis/versions/{version_id}: the effective version is taken
 * offline (its history stays); another version leaves the history. */
void apig_handle_version_delete(apig_call *call) {
  apig_api_version *version =
      apig_instance_version(call->inst, call->path_id);
  if (!version) {
    apig_reply_error(call->reply, APIG_E_VERSION_NOT_FOUND, call->path_id);
    return;
  }
  /* A version that is not in effect is offline already: it stays in the
   * history and nothing changes, so a retried DELETE is harmless. */
  if (version->slot->effective != version) {
    call->reply->status = 204;
    return;
  }
  char id[APIG_ID_LEN + 1], api_id[APIG_ID_LEN + 1];
  char env_id[APIG_ENV_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", version->id);
  snprintf(api_id, sizeof api_id, "%s", version->api->id);
  snprintf(env_id, sizeof env_id, "%s", version->slot->env_id);
  apig_op op = {.kind = APIG_OP_OFFLINE,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = api_id,
                .env_id = env_id};
  if (apig_commit(call, &op, 1) != 0)
    return;
  call->reply->status = 204;
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "version %s of API %s in environment %s taken offline by %s", id,
            api_id, env_id, call->caller);
}

/* GET …/apis/runtime/{api_id}?env_id=: the effective version's frozen
 * definition; env_id defaults to RELEASE. */
void apig_handle_runtime(apig_call *call) {
  apig_api *api = apig_instance_api(call->inst, call->path_id);
  if (!api) {
    apig_reply_error(call->reply, APIG_E_API_NOT_FOUND, call->path_id);
    return;
  }
  const apig_param *param = apig_query(call, "env_id");
  const char *env_id = param && param->value_len > 0 ? param->value
                                                     : APIG_RELEASE_ENV_ID;
  if (!apig_instance_env(call->inst, env_id)) {
    apig_reply_error(call->reply, APIG_E_ENV_NOT_FOUND, env_id);
    return;
  }
  const apig_api_env *slot = apig_api_slot(api, env_id);
  if (!slot || !slot->effective) {
    apig_reply_error(call->reply, APIG_E_NOT_PUBLISHED, api->id, env_id);
    return;
  }
  call->reply->status = 200;
  apig_render_frozen(&call->reply->body, call->inst, slot->effective);
}
