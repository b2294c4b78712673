/* Create calls: environments, API groups and APIs. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "validate.h"

/* Reads the optional string field key of body into *out (NULL if absent).
 * Returns 0, or -1 after answering 400 APIG.2011 for another type. */
static int optional_string(apig_call *call, const cJSON *body,
                           const char *key, const char **out) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(body, key);
  *out = NULL;
  if (!item)
    return 0;
  if (!cJSON_IsString(item)) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID, key);
    return -1;
  }
  *out = item->valuestring;
  return 0;
}

int apig_read_name_remark(apig_call *call, const cJSON *body,
                          int (*valid_name)(const char *), const char **name,
                          const char **remark) {
  if (optional_string(call, body, "name", name) != 0 ||
      optional_string(call, body, "remark", remark) != 0)
    return -1;
  if (!*name) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "name");
    return -1;
  }
  if (!valid_name(*name)) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID, "name");
    return -1;
  }
  if (*remark && !apig_valid_remark(*remark)) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID, "remark");
    return -1;
  }
  return 0;
}

void apig_handle_env_create(apig_call *call) {
  cJSON *body = apig_body_object(call);
  const char *name, *remark;
  if (!body || apig_read_name_remark(call, body, apig_valid_env_name, &name,
                                     &remark) != 0)
    goto done;
  if (apig_instance_env_by_name(call->inst, name)) {
    apig_reply_error(call->reply, APIG_E_ENV_NAME_EXISTS, name);
    goto done;
  }
  unsigned quota = call->apig->options.env_quota;
  if (apig_instance_env_count(call->inst) - 1 >= quota) {
    char text[16];
    snprintf(text, sizeof text, "%u", quota);
    apig_reply_error(call->reply, APIG_E_ENV_QUOTA, text);
    goto done;
  }
  char id[APIG_ID_LEN + 1];
  apig_op op = {.kind = APIG_OP_ENV_PUT,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id,
                .name = name,
                .remark = remark ? remark : "",
                .time_ns = call->now_ns};
  if (apig_new_id(id) != 0 || apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 201;
  apig_render_env(&call->reply->body, apig_instance_env(call->inst, id),
                  APIG_TIME_NANO);
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "environment %s (%s) created by %s", id, name, call->caller);
done:
  cJSON_Delete(body);
}

void apig_handle_group_create(apig_call *call) {
  cJSON *body = apig_body_object(call);
  const char *name, *remark;
  if (!body || apig_read_name_remark(call, body, apig_valid_name, &name,
                                     &remark) != 0)
    goto done;
  for (apig_group *g = call->inst->groups; g; g = g->hh.next)
    if (strcmp(g->name, name) == 0) {
      apig_reply_error(call->reply, APIG_E_GROUP_NAME_EXISTS, name);
      goto done;
    }
  char id[APIG_ID_LEN + 1];
  apig_op op = {.kind = APIG_OP_GROUP_PUT,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id,
                .name = name,
                .remark = remark ? remark : "",
                .time_ns = call->now_ns};
  if (apig_new_id(id) != 0 || apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 201;
  apig_render_group(&call->reply->body, apig_instance_group(call->inst, id),
                    APIG_TIME_NANO);
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "group %s (%s) created by %s", id, name, call->caller);
done:
  cJSON_Delete(body);
}

void apig_handle_api_create(apig_call *call) {
  cJSON *body = apig_body_object(call);
  char *def = NULL;
  if (!body)
    return;
  apig_group *group;
  const char *param;
  apig_error error = apig_check_api_body(call, body, &group, &def, &param);
  if (error != APIG_E_OK) {
    apig_reply_error(call->reply, error, param);
    goto done;
  }
  if (apig_check_api_target(call, body, NULL, group) != 0)
    goto done;
  const char *name = cJSON_GetObjectItem(body, "name")->valuestring;
  char id[APIG_ID_LEN + 1];
  apig_op op = {.kind = APIG_OP_API_PUT,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id,
                .group_id = group->id,
                .def = def,
                .def_len = strlen(def),
                .time_ns = call->now_ns};
  if (apig_new_id(id) != 0 || apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 201;
  apig_render_api(&call->reply->body, call->inst,
                  apig_instance_api(call->inst, id), APIG_TIME_NANO);
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "API %s (%s) created in group %s by %s", id, name, group->id,
            call->caller);
done:
  apig_free(def);
  cJSON_Delete(body);
}
