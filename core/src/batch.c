/* POST …/apis/publish?action=online|offline: publish or take offline up to
 * 1000 APIs in one atomic change, with a result per API.
 *
 * The request-wide checks run in a fixed order and the first that fails
 * answers alone. Then each API is staged in request order (duplicates once,
 * at their first place), every successful one becomes an op, and all ops
 * are committed together: journal, then memory.
 */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "publish.h"

#define MAX_BATCH 1000

typedef struct batch_body {
  cJSON *root;
  const cJSON *apis;    /* array of strings, or NULL */
  const char *group_id; /* or NULL */
  const char *env_id;   /* or NULL */
  const char *remark;   /* "" when absent */
  int apis_count;
} batch_body;

static int check_action(apig_call *call, apig_action *action) {
  const apig_param *param = apig_query(call, "action");
  if (apig_query_count(call, "action") != 1) {
    apig_reply_error(call->reply, APIG_E_ACTION_INVALID);
    return -1;
  }
  if (param->value_len == 6 && memcmp(param->value, "online", 6) == 0) {
    *action = APIG_ACTION_ONLINE;
  } else if (param->value_len == 7 &&
             memcmp(param->value, "offline", 7) == 0) {
    *action = APIG_ACTION_OFFLINE;
  } else {
    apig_reply_error(call->reply, APIG_E_ACTION_INVALID);
    return -1;
  }
  return 0;
}

/* Each known field must have its type: apis an array of strings, the
 * others strings. */
static int check_types(apig_call *call, batch_body *body) {
  const cJSON *item;
  cJSON_ArrayForEach(item, body->root) {
    const char *key = item->string;
    if (strcmp(key, "apis") == 0) {
      int ok = cJSON_IsArray(item);
      int count = 0;
      for (const cJSON *id = ok ? item->child : NULL; id; id = id->next) {
        count++;
        if (!cJSON_IsString(id))
          ok = 0;
      }
      if (!ok) {
        apig_reply_error(call->reply, APIG_E_PARAM_INVALID, "apis");
        return -1;
      }
      body->apis = item;
      body->apis_count = count;
    } else if (strcmp(key, "group_id") == 0 || strcmp(key, "env_id") == 0 ||
               strcmp(key, "remark") == 0) {
      if (!cJSON_IsString(item)) {
        apig_reply_error(call->reply, APIG_E_PARAM_INVALID, key);
        return -1;
      }
      if (key[0] == 'g')
        body->group_id = item->valuestring;
      else if (key[0] == 'e')
        body->env_id = item->valuestring;
      else
        body->remark = item->valuestring;
    }
  }
  return 0;
}

/* env_id (unless the policy maps environments), apis or group_id, at most
 * 1000 ids, the remark, then the environment and group must exist. */
static int check_fields(apig_call *call, batch_body *body) {
  int mapping = apig_has_env_mapping(call->apig);
  if (body->env_id && body->env_id[0] == '\0')
    body->env_id = NULL;
  if (!body->env_id && !mapping) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "env_id");
    return -1;
  }
  if (body->apis_count == 0 && !body->group_id) {
    apig_reply_error(call->reply, APIG_E_PARAM_MISSING, "apis");
    return -1;
  }
  if (body->apis_count > MAX_BATCH) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID, "apis");
    return -1;
  }
  long chars = apig_utf8_count(body->remark, strlen(body->remark));
  if (chars < 0 || chars > 255) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID, "remark");
    return -1;
  }
  if (!mapping && !apig_instance_env(call->inst, body->env_id)) {
    apig_reply_error(call->reply, APIG_E_ENV_NOT_FOUND, body->env_id);
    return -1;
  }
  if (body->group_id && !apig_instance_group(call->inst, body->group_id)) {
    apig_reply_error(call->reply, APIG_E_GROUP_NOT_FOUND, body->group_id);
    return -1;
  }
  return 0;
}

/* The ids to act on, in request order, each once. */
typedef struct id_list {
  const char **ids;
  size_t count;
  /* Open-addressing set of the ids taken so far. */
  const char **slots;
  size_t slot_count;
} id_list;

static uint64_t hash_id(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Adds id unless it is there already. Returns 1 when added. */
static int add_unique(id_list *list, const char *id) {
  size_t mask = list->slot_count - 1;
  for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
    if (!list->slots[i]) {
      list->slots[i] = id;
      list->ids[list->count++] = id;
      return 1;
    }
    if (strcmp(list->slots[i], id) == 0)
      return 0;
  }
}

static int collect_ids(apig_call *call, const batch_body *body,
                       id_list *list) {
  size_t max = body->apis_count;
  if (max == 0) {
    apig_group *group = apig_instance_group(call->inst, body->group_id);
    max = group->api_count;
  }
  list->slot_count = 16;
  while (list->slot_count < max * 2)
    list->slot_count *= 2;
  list->ids = apig_calloc(max ? max : 1, sizeof *list->ids);
  list->slots = apig_calloc(list->slot_count, sizeof *list->slots);
  if (!list->ids || !list->slots)
    return -1;
  if (body->apis_count > 0) {
    const cJSON *id;
    cJSON_ArrayForEach(id, body->apis) add_unique(list, id->valuestring);
    return 0;
  }
  apig_group *group = apig_instance_group(call->inst, body->group_id);
  for (apig_api *api = group->first_api; api; api = api->group_next)
    add_unique(list, api->id);
  return 0;
}

static void render_failure(apig_buf *b, const apig_staged *staged) {
  apig_buf_puts(b, "{\"api_id\":");
  apig_buf_json_cstr(b, staged->api_id);
  if (staged->api) {
    apig_buf_puts(b, ",\"api_name\":");
    apig_buf_json_cstr(b, staged->api->name);
  }
  apig_buf_puts(b, ",\"error_code\":\"");
  apig_buf_puts(b, staged->error_code[0] ? staged->error_code
                                         : apig_error_code(staged->error));
  apig_buf_puts(b, "\",\"error_msg\":");
  apig_buf_json_cstr(b, staged->message);
  apig_buf_putc(b, '}');
}

static void render_answer(apig_call *call, const apig_publish_request *req,
                          apig_staged *staged, size_t count) {
  apig_buf *b = &call->reply->body;
  call->reply->status = 200;
  apig_buf_reset(b);
  /* A success item is about 300 bytes: one allocation for the answer. */
  apig_buf_reserve(b, 64 + count * 320);
  apig_buf_puts(b, "{\"success\":[");
  int first = 1;
  for (size_t i = 0; i < count; i++) {
    if (staged[i].error != APIG_E_OK)
      continue;
    if (!first)
      apig_buf_putc(b, ',');
    first = 0;
    if (req->action == APIG_ACTION_OFFLINE)
      apig_render_offline_item(b, &staged[i]);
    else
      apig_render_publish_item(
          b, staged[i].api, apig_api_slot(staged[i].api, staged[i].env_id));
  }
  apig_buf_puts(b, "],\"failure\":[");
  first = 1;
  for (size_t i = 0; i < count; i++) {
    if (staged[i].error == APIG_E_OK)
      continue;
    if (!first)
      apig_buf_putc(b, ',');
    first = 0;
    render_failure(b, &staged[i]);
  }
  apig_buf_puts(b, "]}");
}

/* Logs who changed what: the caller, the counts and, for an audit trail,
 * the first ten changed APIs with their environments. */
static void log_batch(apig_call *call, const apig_publish_request *req,
                      const apig_staged *staged, size_t count,
                      size_t succeeded) {
  enum { LISTED = 10 };
  apig_buf changed;
  apig_buf_init(&changed);
  size_t listed = 0;
  for (size_t i = 0; i < count && listed < LISTED; i++) {
    if (staged[i].error != APIG_E_OK)
      continue;
    apig_buf_printf(&changed, "%s%s@%s", listed ? " " : "",
                    staged[i].api->id, staged[i].env_id);
    listed++;
  }
  if (succeeded > listed)
    apig_buf_printf(&changed, " and %zu more", succeeded - listed);
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "batch %s by %s on %s:%s: %zu APIs, %zu succeeded%s%s",
            req->action == APIG_ACTION_ONLINE ? "online" : "offline",
            call->caller, call->project_id, call->instance_id, count,
            succeeded, listed ? ": " : "",
            changed.data ? changed.data : "");
  apig_buf_free(&changed);
}

static void run_batch(apig_call *call, const apig_publish_request *req,
                      const id_list *list) {
  /* apig_stage_api fills each item, so no zeroing here. */
  apig_staged *staged = apig_malloc((list->count ? list->count : 1) *
                                    sizeof *staged);
  apig_op *ops = apig_malloc((list->count ? list->count : 1) * sizeof *ops);
  size_t staged_count = 0;
  if (!staged || !ops) {
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    goto done;
  }
  /* Overlap the cache misses of the API lookups that staging makes. */
  for (int item = 0; item <= 1; item++)
    for (size_t i = 0; i < list->count; i++)
      apig_idmap_prefetch(&call->inst->apis, list->ids[i], item);
  size_t op_count = 0;
  for (size_t i = 0; i < list->count; i++) {
    apig_stage_api(req, list->ids[i], &staged[i]);
    staged_count++;
    if (staged[i].error == APIG_E_OK)
      apig_staged_op(req, &staged[i], &ops[op_count++]);
  }
  if (op_count > 0 && apig_commit(call, ops, op_count) != 0)
    goto done;
  apig_metrics_batch(&call->apig->metrics, (unsigned)list->count);
  render_answer(call, req, staged, list->count);
  log_batch(call, req, staged, list->count, op_count);
done:
  for (size_t i = 0; i < staged_count; i++)
    apig_staged_free(&staged[i]);
  apig_free(staged);
  apig_free(ops);
}

void apig_handle_batch(apig_call *call) {
  apig_action action;
  if (check_action(call, &action) != 0)
    return;
  batch_body body = {.remark = ""};
  body.root = apig_body_object(call);
  if (!body.root)
    return;
  id_list list = {0};
  if (check_types(call, &body) != 0 || check_fields(call, &body) != 0)
    goto done;
  if (collect_ids(call, &body, &list) != 0) {
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    goto done;
  }
  apig_publish_request req = {call, action, body.env_id, body.remark,
                              body.group_id, (long)list.count,
                              apig_shared_new(body.remark)};
  if (!req.remark_shared) {
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    goto done;
  }
  run_batch(call, &req, &list);
  apig_shared_unref(req.remark_shared);
done:
  apig_free(list.ids);
  apig_free(list.slots);
  cJSON_Delete(body.root);
}
