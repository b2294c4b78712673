/* Update and delete calls: environments, API groups and APIs.
 *
 * Each handler checks the path's entity, then the body, then the state
 * rules, and only then builds its op, so a rejected request changes
 * nothing.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "validate.h"

static int is_release(const apig_env *env) {
  return strcmp(env->id, APIG_RELEASE_ENV_ID) == 0;
}

/* Finds the environment of the path. RELEASE can be neither renamed nor
 * deleted. Returns NULL after replying 404 or 403. */
static apig_env *path_env(apig_call *call) {
  apig_env *env = apig_instance_env(call->inst, call->path_id);
  if (!env) {
    apig_reply_error(call->reply, APIG_E_ENV_NOT_FOUND, call->path_id);
    return NULL;
  }
  if (is_release(env)) {
    apig_reply_error(call->reply, APIG_E_ENV_PROTECTED, env->id);
    return NULL;
  }
  return env;
}

static void log_change(apig_call *call, const char *what, const char *id) {
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "%s %s by %s", what, id, call->caller);
}

/* PUT …/envs/{env_id}: name is required even when it does not change; an
 * absent remark keeps the current one. */
void apig_handle_env_update(apig_call *call) {
  apig_env *env = path_env(call);
  if (!env)
    return;
  cJSON *body = apig_body_object(call);
  const char *name, *remark;
  if (!body || apig_read_name_remark(call, body, apig_valid_env_name, &name,
                                     &remark) != 0)
    goto done;
  const apig_env *named = apig_instance_env_by_name(call->inst, name);
  if (named && named != env) {
    apig_reply_error(call->reply, APIG_E_ENV_NAME_EXISTS, name);
    goto done;
  }
  apig_op op = {.kind = APIG_OP_ENV_PUT,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = env->id,
                .name = name,
                .remark = remark ? remark : env->remark,
                .time_ns = env->create_ns};
  char id[APIG_ENV_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", env->id);
  if (apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 200;
  apig_render_env(&call->reply->body, apig_instance_env(call->inst, id),
                  APIG_TIME_NANO);
  log_change(call, "updated environment", id);
done:
  cJSON_Delete(body);
}

void apig_handle_env_delete(apig_call *call) {
  apig_env *env = path_env(call);
  if (!env)
    return;
  if (env->published_count > 0) {
    apig_reply_error(call->reply, APIG_E_ENV_HAS_APIS, env->id);
    return;
  }
  char id[APIG_ENV_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", env->id);
  apig_op op = {.kind = APIG_OP_ENV_DELETE,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id};
  if (apig_commit(call, &op, 1) != 0)
    return;
  call->reply->status = 204;
  log_change(call, "deleted environment", id);
}

static apig_group *path_group(apig_call *call) {
  apig_group *group = apig_instance_group(call->inst, call->path_id);
  if (!group)
    apig_reply_error(call->reply, APIG_E_GROUP_NOT_FOUND, call->path_id);
  return group;
}

/* PUT …/api-groups/{group_id}: name and remark, as in create. */
void apig_handle_group_update(apig_call *call) {
  apig_group *group = path_group(call);
  if (!group)
    return;
  cJSON *body = apig_body_object(call);
  const char *name, *remark;
  if (!body || apig_read_name_remark(call, body, apig_valid_name, &name,
                                     &remark) != 0)
    goto done;
  for (const apig_group *g = call->inst->groups; g; g = g->hh.next)
    if (g != group && strcmp(g->name, name) == 0) {
      apig_reply_error(call->reply, APIG_E_GROUP_NAME_EXISTS, name);
      goto done;
    }
  apig_op op = {.kind = APIG_OP_GROUP_PUT,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = group->id,
                .name = name,
                .remark = remark ? remark : group->remark,
                .time_ns = group->register_ns,
                .time2_ns = call->now_ns};
  if (apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 200;
  apig_render_group(&call->reply->body, group, APIG_TIME_NANO);
  log_change(call, "updated group", group->id);
done:
  cJSON_Delete(body);
}

void apig_handle_group_delete(apig_call *call) {
  apig_group *group = path_group(call);
  if (!group)
    return;
  if (group->api_count > 0) {
    apig_reply_error(call->reply, APIG_E_GROUP_HAS_APIS, group->id);
    return;
  }
  char id[APIG_ID_LEN + 1];
  snprintf(id, sizeof id, "%s", group->id);
  apig_op op = {.kind = APIG_OP_GROUP_DELETE,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id};
  if (apig_commit(call, &op, 1) != 0)
    return;
  call->reply->status = 204;
  log_change(call, "deleted group", id);
}

static apig_api *path_api(apig_call *call) {
  apig_api *api = apig_instance_api(call->inst, call->path_id);
  if (!api)
    apig_reply_error(call->reply, APIG_E_API_NOT_FOUND, call->path_id);
  return api;
}

/* PUT …/apis/{api_id}: the body replaces the whole editable definition,
 * with the rules of create. Versions keep the definition they froze. */
void apig_handle_api_update(apig_call *call) {
  apig_api *api = path_api(call);
  if (!api)
    return;
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
  if (apig_check_api_target(call, body, api, group) != 0)
    goto done;

  apig_op op = {.kind = APIG_OP_API_PUT,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = api->id,
                .group_id = group->id,
                .def = def,
                .def_len = strlen(def),
                .time_ns = api->register_ns,
                .time2_ns = call->now_ns};
  if (apig_commit(call, &op, 1) != 0)
    goto done;
  call->reply->status = 200;
  apig_render_api(&call->reply->body, call->inst, api, APIG_TIME_NANO);
  log_change(call, "updated API", api->id);
done:
  apig_free(def);
  cJSON_Delete(body);
}

/* DELETE …/apis/{api_id}: only an API that is online nowhere; its version
 * history goes with it. */
void apig_handle_api_delete(apig_call *call) {
  apig_api *api = path_api(call);
  if (!api)
    return;
  for (size_t i = 0; i < api->env_count; i++)
    if (api->envs[i].effective) {
      apig_reply_error(call->reply, APIG_E_API_PUBLISHED, api->id);
      return;
    }
  char id[APIG_ID_LEN + 1];
  snprintf(id, sizeof id, "%s", api->id);
  apig_op op = {.kind = APIG_OP_API_DELETE,
                .project_id = call->project_id,
                .instance_id = call->instance_id,
                .id = id};
  if (apig_commit(call, &op, 1) != 0)
    return;
  call->reply->status = 204;
  log_change(call, "deleted API", id);
}
