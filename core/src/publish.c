/* The per-API steps of publishing and taking offline: environment mapping,
 * authorization and remark rewriting by the policy, then the check that
 * the change applies. Nothing here changes state: it stages ops. */
#include "publish.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

int apig_has_env_mapping(const apig_t *apig) {
  return apig->policy && apig_policy_has_map_env(apig->policy);
}

void apig_staged_free(apig_staged *staged) {
  apig_shared_unref(staged->remark);
  staged->remark = NULL;
}

static void fail(apig_staged *staged, apig_error error, const char *a,
                 const char *b) {
  staged->error = error;
  apig_error_format(staged->message, sizeof staged->message, error, a, b);
}

/* The read-only view of an API that hooks get. */
typedef struct api_view {
  apig_policy_api api;
  const char *env_ids[64];
  const char *version_ids[64];
} api_view;

static void fill_view(api_view *view, const apig_api *api) {
  memset(view, 0, sizeof *view);
  view->api.id = api->id;
  view->api.name = api->name;
  view->api.group_id = api->group->id;
  view->api.group_name = api->group->name;
  view->api.req_method = api->req_method;
  view->api.req_uri = api->req_uri;
  view->api.auth_type = api->auth_type ? api->auth_type : "";
  view->api.remark = api->remark ? api->remark : "";
  view->api.type = api->type;
  size_t n = 0;
  for (size_t i = 0; i < api->env_count && n < 64; i++) {
    if (!api->envs[i].effective)
      continue;
    view->env_ids[n] = api->envs[i].env_id;
    view->version_ids[n] = api->envs[i].effective->id;
    n++;
  }
  view->api.published_count = n;
  view->api.published_env_ids = view->env_ids;
  view->api.published_version_ids = view->version_ids;
}

/* ctx.envs: the instance's environments by name. */
static const char *env_id_by_name(const void *data, const char *name) {
  const apig_env *env = apig_instance_env_by_name(data, name);
  return env ? env->id : NULL;
}

static int env_after(const void *data, const char *name,
                     const char **next_name, const char **next_id) {
  const apig_instance *inst = data;
  const apig_env *next = inst->envs;
  if (name) {
    const apig_env *env = apig_instance_env_by_name(inst, name);
    next = env ? env->hh.next : NULL;
  }
  if (!next)
    return 0;
  *next_name = next->name;
  *next_id = next->id;
  return 1;
}

static void fill_ctx(apig_policy_ctx *ctx,
                     const apig_publish_request *request,
                     const apig_policy_envs *envs) {
  apig_call *call = request->call;
  ctx->action = request->action == APIG_ACTION_ONLINE ? "online" : "offline";
  ctx->project_id = call->project_id;
  ctx->instance_id = call->instance_id;
  ctx->request_id = call->reply->request_id;
  ctx->caller = call->caller;
  ctx->batch_size = request->batch_size;
  ctx->time = call->now_ns / 1000000000;
  ctx->remark = request->remark;
  ctx->envs = envs;
}

/* Hook failures become APIG.9999 items with the hook's one-line message. */
static void hook_failed(apig_staged *staged, const char *err) {
  staged->error = APIG_E_SYSTEM;
  snprintf(staged->message, sizeof staged->message, "%s", err);
}

static int map_env(const apig_publish_request *request, const api_view *view,
                   const apig_policy_ctx *ctx, apig_staged *staged) {
  apig_t *apig = request->call->apig;
  const char *env_id = request->env_id;
  char *mapped = NULL;
  char err[256];
  if (apig_has_env_mapping(apig)) {
    if (apig_policy_map_env(apig->policy, env_id, &view->api, ctx, &mapped,
                            err, sizeof err) != APIG_E_OK) {
      hook_failed(staged, err);
      return -1;
    }
    if (mapped)
      env_id = mapped;
  }
  if (!env_id) {
    fail(staged, APIG_E_PARAM_MISSING, "env_id", NULL);
    return -1;
  }
  snprintf(staged->env_id, sizeof staged->env_id, "%s", env_id);
  int too_long = strlen(env_id) > APIG_ENV_ID_MAX;
  apig_free(mapped);
  if (too_long || !apig_instance_env(request->call->inst, staged->env_id)) {
    fail(staged, APIG_E_ENV_NOT_FOUND, staged->env_id, NULL);
    return -1;
  }
  return 0;
}

static int authorize(const apig_publish_request *request,
                     const api_view *view, const apig_policy_env *env,
                     const apig_policy_ctx *ctx, apig_staged *staged) {
  apig_policy *policy = request->call->apig->policy;
  if (!policy || !apig_policy_has_authorize(policy))
    return 0;
  int allowed = 0;
  char message[256], code[16], err[256];
  if (apig_policy_authorize(policy, &view->api, env, ctx, &allowed, message,
                            sizeof message, code, err,
                            sizeof err) != APIG_E_OK) {
    hook_failed(staged, err);
    return -1;
  }
  if (allowed)
    return 0;
  staged->error = APIG_E_NO_PERMISSION;
  snprintf(staged->error_code, sizeof staged->error_code, "%s", code);
  if (message[0])
    snprintf(staged->message, sizeof staged->message, "%s", message);
  else
    apig_error_format(staged->message, sizeof staged->message,
                      APIG_E_NO_PERMISSION);
  return -1;
}

static int rewrite_remark(const apig_publish_request *request,
                          const api_view *view, const apig_policy_env *env,
                          const apig_policy_ctx *ctx, apig_staged *staged) {
  apig_policy *policy = request->call->apig->policy;
  char err[256];
  if (!policy || !apig_policy_has_rewrite_remark(policy)) {
    staged->remark = request->remark_shared
                         ? apig_shared_ref(request->remark_shared)
                         : apig_shared_new(request->remark);
  } else {
    char *rewritten = NULL;
    if (apig_policy_rewrite_remark(policy, request->remark, &view->api, env,
                                   ctx, &rewritten, err,
                                   sizeof err) != APIG_E_OK) {
      hook_failed(staged, err);
      return -1;
    }
    staged->remark = rewritten ? apig_shared_new(rewritten) : NULL;
    apig_free(rewritten);
  }
  if (!staged->remark) {
    fail(staged, APIG_E_SYSTEM, NULL, NULL);
    return -1;
  }
  return 0;
}

void apig_stage_api(const apig_publish_request *request, const char *api_id,
                    apig_staged *staged) {
  apig_call *call = request->call;
  /* Every field but the long message buffer, which fail() fills. */
  memset(staged, 0, offsetof(apig_staged, message));
  staged->message[0] = '\0';
  memset(staged->error_code, 0, sizeof staged->error_code);
  staged->api_id = api_id;
  staged->api = apig_instance_api(call->inst, api_id);
  /* An API outside the request's group fails as not found in it; it
   * exists, so its item still names it. */
  if (staged->api && request->group_id &&
      strcmp(staged->api->group->id, request->group_id) != 0) {
    fail(staged, APIG_E_BATCH_API_NOT_FOUND, api_id, NULL);
    return;
  }
  if (!staged->api) {
    fail(staged, APIG_E_BATCH_API_NOT_FOUND, api_id, NULL);
    return;
  }
  api_view view;
  apig_policy_ctx ctx;
  apig_policy_envs envs = {call->inst, env_id_by_name, env_after};
  if (call->apig->policy) { /* the views only feed the hooks */
    fill_view(&view, staged->api);
    fill_ctx(&ctx, request, &envs);
  }
  if (map_env(request, &view, &ctx, staged) != 0)
    return;
  const apig_env *env = apig_instance_env(call->inst, staged->env_id);
  apig_policy_env env_view = {env->id, env->name, env->remark};
  if (authorize(request, &view, &env_view, &ctx, staged) != 0 ||
      rewrite_remark(request, &view, &env_view, &ctx, staged) != 0)
    return;
  apig_api_env *slot = apig_api_slot(staged->api, staged->env_id);
  if (request->action == APIG_ACTION_OFFLINE) {
    if (!slot || !slot->effective)
      fail(staged, APIG_E_NOT_PUBLISHED, api_id, staged->env_id);
    else
      strcpy(staged->version_id, slot->effective->id);
    return;
  }
  /* publish_id stays while the API stays online in the environment. */
  int online = slot && slot->effective;
  if (online)
    strcpy(staged->publish_id, slot->publish_id);
  if (apig_new_id(staged->version_id) != 0 ||
      (!online && apig_new_id(staged->publish_id) != 0))
    fail(staged, APIG_E_SYSTEM, NULL, NULL);
}

void apig_staged_op(const apig_publish_request *request,
                    const apig_staged *staged, apig_op *op) {
  apig_call *call = request->call;
  memset(op, 0, sizeof *op);
  op->kind = request->action == APIG_ACTION_ONLINE ? APIG_OP_PUBLISH
                                                   : APIG_OP_OFFLINE;
  op->project_id = call->project_id;
  op->instance_id = call->instance_id;
  op->id = staged->api->id;
  op->env_id = staged->env_id;
  op->remark = staged->remark;
  op->remark_shared = staged->remark;
  op->version_id = staged->version_id;
  op->publish_id = staged->publish_id;
  op->time_ns = call->now_ns;
  if (op->kind == APIG_OP_PUBLISH)
    op->api_hint = staged->api;
}

void apig_render_offline_item(apig_buf *b, const apig_staged *staged) {
  apig_buf_puts(b, "{\"api_id\":");
  apig_buf_json_cstr(b, staged->api->id);
  apig_buf_puts(b, ",\"api_name\":");
  apig_buf_json_cstr(b, staged->api->name);
  apig_buf_puts(b, ",\"env_id\":");
  apig_buf_json_cstr(b, staged->env_id);
  apig_buf_puts(b, ",\"version_id\":");
  apig_buf_json_cstr(b, staged->version_id);
  apig_buf_putc(b, '}');
}
