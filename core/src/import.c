/* OpenAPI import: operations become MOCK-backed APIs of one group. */
#include "import.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "apig_yaml.h"
#include "validate.h"

static const char *const http_methods[] = {"get",     "put",  "post",
                                           "delete",  "options", "head",
                                           "patch",   NULL};

void apig_import_group_name(const cJSON *doc, char *out, size_t size) {
  const cJSON *info = cJSON_GetObjectItemCaseSensitive(doc, "info");
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(info, "title");
  apig_make_name(cJSON_IsString(title) ? title->valuestring : "imported",
                 out, size);
}

static int is_openapi(const cJSON *doc) {
  const cJSON *swagger = cJSON_GetObjectItemCaseSensitive(doc, "swagger");
  const cJSON *openapi = cJSON_GetObjectItemCaseSensitive(doc, "openapi");
  if (cJSON_IsString(swagger) && strcmp(swagger->valuestring, "2.0") == 0)
    return 1;
  return cJSON_IsString(openapi) &&
         strncmp(openapi->valuestring, "3.", 2) == 0;
}

/* One operation on its way to becoming an API. */
typedef struct planned {
  const char *path;
  char method[8];
  char name[1024];
  char id[APIG_ID_LEN + 1];
  char *def;
  apig_error error;
  char message[512];
} planned;

typedef struct import_plan {
  planned *items;
  size_t count, cap;
  apig_op *ops;
  size_t op_count;
  unsigned created; /* APIs that will be added to the group */
} import_plan;

static int plan_grow(import_plan *plan) {
  if (plan->count < plan->cap)
    return 0;
  size_t cap = plan->cap ? plan->cap * 2 : 64;
  planned *items = apig_realloc(plan->items, cap * sizeof *items);
  if (!items)
    return -1;
  plan->items = items;
  plan->cap = cap;
  return 0;
}

static void operation_name(const cJSON *operation, const char *method,
                           const char *path, char *out, size_t size) {
  const cJSON *op_id = cJSON_GetObjectItemCaseSensitive(operation,
                                                        "operationId");
  /* An operationId without a single letter or digit cannot be made into
   * a meaningful name: "!!!" would become "api___". */
  int usable = 0;
  for (const char *p = cJSON_IsString(op_id) ? op_id->valuestring : "";
       *p && !usable; p++)
    usable = isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80;
  if (usable) {
    apig_make_name(op_id->valuestring, out, size);
    return;
  }
  char text[1200];
  snprintf(text, sizeof text, "%s_%s", method, path);
  apig_make_name(text, out, size);
}

static char *operation_def(const cJSON *operation, const planned *item) {
  cJSON *def = cJSON_CreateObject();
  cJSON_AddStringToObject(def, "name", item->name);
  cJSON_AddNumberToObject(def, "type", 1);
  cJSON_AddStringToObject(def, "req_protocol", "HTTPS");
  cJSON_AddStringToObject(def, "req_method", item->method);
  cJSON_AddStringToObject(def, "req_uri", item->path);
  cJSON_AddStringToObject(def, "auth_type", "NONE");
  cJSON_AddStringToObject(def, "backend_type", "MOCK");
  cJSON *mock = cJSON_AddObjectToObject(def, "mock_info");
  cJSON_AddStringToObject(mock, "result_content", "");
  const cJSON *summary = cJSON_GetObjectItemCaseSensitive(operation,
                                                          "summary");
  if (cJSON_IsString(summary) && apig_valid_remark(summary->valuestring))
    cJSON_AddStringToObject(def, "remark", summary->valuestring);
  char *text = cJSON_PrintUnformatted(def);
  cJSON_Delete(def);
  return text;
}

static void item_fail(planned *item, apig_error error, const char *a,
                      const char *b) {
  item->error = error;
  apig_error_format(item->message, sizeof item->message, error, a, b);
}

/* Is the name or route taken by an earlier operation of this import? */
static apig_error planned_conflict(const import_plan *plan,
                                   const planned *item) {
  for (size_t i = 0; i + 1 < plan->count; i++) {
    const planned *other = &plan->items[i];
    if (other->error != APIG_E_OK)
      continue;
    if (strcmp(other->name, item->name) == 0)
      return APIG_E_API_NAME_EXISTS;
    if (strcmp(other->method, item->method) == 0 &&
        strcmp(other->path, item->path) == 0)
      return APIG_E_API_ROUTE_EXISTS;
  }
  return APIG_E_OK;
}

static void plan_operation(apig_call *call, import_plan *plan,
                           const apig_group *group, const char *path,
                           const char *method, const cJSON *operation) {
  planned *item = &plan->items[plan->count++];
  memset(item, 0, sizeof *item);
  item->path = path;
  for (size_t i = 0; method[i] && i < sizeof item->method - 1; i++)
    item->method[i] = (char)toupper((unsigned char)method[i]);
  operation_name(operation, item->method, path, item->name,
                 sizeof item->name);
  unsigned quota = call->apig->options.group_api_quota;
  apig_error error = APIG_E_OK;
  if (path[0] != '/' || strlen(path) > 512) {
    item_fail(item, APIG_E_PARAM_INVALID, "req_uri", NULL);
    return;
  }
  if (group)
    error = apig_check_api_unique(call->inst, group, item->name,
                                  item->method, path, NULL);
  if (error == APIG_E_OK)
    error = planned_conflict(plan, item);
  if (error != APIG_E_OK) {
    char route[600];
    snprintf(route, sizeof route, "%s %s", item->method, path);
    item_fail(item, error,
              error == APIG_E_API_NAME_EXISTS ? item->name : route, NULL);
    return;
  }
  if ((group ? group->api_count : 0) + plan->created >= quota) {
    char text[16];
    snprintf(text, sizeof text, "%u", quota);
    item_fail(item, APIG_E_GROUP_API_QUOTA, text, NULL);
    return;
  }
  item->def = operation_def(operation, item);
  if (!item->def || apig_new_id(item->id) != 0) {
    item_fail(item, APIG_E_SYSTEM, NULL, NULL);
    return;
  }
  plan->created++;
}

static int plan_document(apig_call *call, import_plan *plan,
                         const cJSON *doc, const apig_group *group) {
  const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
  const cJSON *first = cJSON_IsObject(paths) ? paths->child : NULL;
  for (const cJSON *path_item = first; path_item; path_item = path_item->next) {
    if (!cJSON_IsObject(path_item))
      continue;
    const cJSON *operation;
    cJSON_ArrayForEach(operation, path_item) {
      const char *const *m = http_methods;
      while (*m && strcmp(*m, operation->string) != 0)
        m++;
      if (!*m || !cJSON_IsObject(operation))
        continue;
      if (plan_grow(plan) != 0)
        return -1;
      plan_operation(call, plan, group, path_item->string, operation->string,
                     operation);
    }
  }
  return 0;
}

static void render_import(apig_buf *b, const char *group_id,
                          const import_plan *plan) {
  apig_buf_puts(b, "{\"group_id\":\"");
  apig_buf_puts(b, group_id);
  apig_buf_puts(b, "\",\"success\":[");
  int first = 1;
  for (size_t i = 0; i < plan->count; i++) {
    const planned *item = &plan->items[i];
    if (item->error != APIG_E_OK)
      continue;
    apig_buf_puts(b, first ? "{\"path\":" : ",{\"path\":");
    first = 0;
    apig_buf_json_cstr(b, item->path);
    apig_buf_printf(b, ",\"method\":\"%s\",\"id\":\"%s\","
                       "\"action\":\"create\"}",
                    item->method, item->id);
  }
  apig_buf_puts(b, "],\"failure\":[");
  first = 1;
  for (size_t i = 0; i < plan->count; i++) {
    const planned *item = &plan->items[i];
    if (item->error == APIG_E_OK)
      continue;
    apig_buf_puts(b, first ? "{\"path\":" : ",{\"path\":");
    first = 0;
    apig_buf_json_cstr(b, item->path);
    apig_buf_printf(b, ",\"method\":\"%s\",\"error_code\":\"%s\","
                       "\"error_msg\":",
                    item->method, apig_error_code(item->error));
    apig_buf_json_cstr(b, item->message);
    apig_buf_putc(b, '}');
  }
  apig_buf_puts(b, "]}");
}

static int build_ops(apig_call *call, import_plan *plan, const char *group_id,
                     const char *new_group_name) {
  plan->ops = apig_calloc(plan->count + 1, sizeof *plan->ops);
  if (!plan->ops)
    return -1;
  if (new_group_name)
    plan->ops[plan->op_count++] = (apig_op){
        .kind = APIG_OP_GROUP_PUT,
        .project_id = call->project_id,
        .instance_id = call->instance_id,
        .id = group_id,
        .name = new_group_name,
        .remark = "",
        .time_ns = call->now_ns};
  for (size_t i = 0; i < plan->count; i++) {
    const planned *item = &plan->items[i];
    if (item->error != APIG_E_OK)
      continue;
    plan->ops[plan->op_count++] = (apig_op){
        .kind = APIG_OP_API_PUT,
        .project_id = call->project_id,
        .instance_id = call->instance_id,
        .id = item->id,
        .group_id = group_id,
        .def = item->def,
        .def_len = strlen(item->def),
        .time_ns = call->now_ns};
  }
  return 0;
}

void apig_import_document(apig_call *call, const cJSON *doc,
                          apig_group *group) {
  if (!cJSON_IsObject(doc) || !is_openapi(doc)) {
    apig_reply_error(call->reply, APIG_E_PARAM_INVALID,
                     "file_name (not a Swagger 2.0 or OpenAPI 3.x document)");
    return;
  }
  char new_name[1024], new_id[APIG_ID_LEN + 1];
  const char *group_id = group ? group->id : new_id;
  if (!group) {
    apig_import_group_name(doc, new_name, sizeof new_name);
    for (apig_group *g = call->inst->groups; g; g = g->hh.next)
      if (strcmp(g->name, new_name) == 0) {
        apig_reply_error(call->reply, APIG_E_GROUP_NAME_EXISTS, new_name);
        return;
      }
    if (apig_new_id(new_id) != 0) {
      apig_reply_error(call->reply, APIG_E_SYSTEM);
      return;
    }
  }
  import_plan plan = {0};
  if (plan_document(call, &plan, doc, group) != 0 ||
      build_ops(call, &plan, group_id, group ? NULL : new_name) != 0) {
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    goto done;
  }
  if (plan.op_count > 0 && apig_commit(call, plan.ops, plan.op_count) != 0)
    goto done;
  call->reply->status = 200;
  render_import(&call->reply->body, group_id, &plan);
  apig_logf(&call->apig->logger, APIG_LOG_INFO, call->reply->request_id,
            "import by %s into group %s: %u APIs created, %zu skipped",
            call->caller, group_id, plan.created, plan.count - plan.created);
done:
  for (size_t i = 0; i < plan.count; i++)
    apig_free(plan.items[i].def);
  apig_free(plan.items);
  apig_free(plan.ops);
}

static int read_whole_file(const char *path, char **data, size_t *len,
                           size_t max) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  apig_buf b;
  apig_buf_init(&b);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= max)
    apig_buf_append(&b, chunk, n);
  int failed = ferror(f) || b.failed || b.len > max;
  fclose(f);
  if (failed) {
    apig_buf_free(&b);
    return -1;
  }
  *data = apig_buf_steal(&b, len);
  return *data ? 0 : -1;
}

static void note_durable(void *arg, int status) { *(int *)arg = status; }

cJSON *apig_openapi_parse(const char *text, size_t len, char *err,
                          size_t err_size) {
  size_t i = 0;
  while (i < len && isspace((unsigned char)text[i]))
    i++;
  if (i < len && text[i] == '{')
    return apig_json_parse(text, len, err, err_size);
  return apig_yaml_parse(text, len, err, err_size);
}

int apig_import_file(apig_t *apig, const char *instance, const char *path,
                     char **summary, char **errmsg) {
  char text[1024];
  *summary = *errmsg = NULL;
  const char *colon = instance ? strchr(instance, ':') : NULL;
  char project[256];
  if (!colon || colon - instance >= (long)sizeof project) {
    snprintf(text, sizeof text, "invalid instance \"%s\"", instance);
    *errmsg = apig_strdup(text);
    return -1;
  }
  snprintf(project, sizeof project, "%.*s", (int)(colon - instance),
           instance);
  char *data = NULL;
  size_t len = 0;
  if (read_whole_file(path, &data, &len, apig->options.max_import_body) !=
      0) {
    snprintf(text, sizeof text, "cannot read %s (missing, unreadable or "
             "larger than %zu bytes)", path, apig->options.max_import_body);
    *errmsg = apig_strdup(text);
    return -1;
  }
  char err[160];
  cJSON *doc = apig_openapi_parse(data, len, err, sizeof err);
  apig_free(data);
  if (!doc) {
    snprintf(text, sizeof text, "%s: %s", path, err);
    *errmsg = apig_strdup(text);
    return -1;
  }
  apig_reply reply;
  apig_reply_init(&reply);
  apig_req req = {"POST", "", 0, NULL, 0, NULL, 0, ""};
  apig_call call = {.apig = apig, .req = &req, .reply = &reply,
                    .project_id = project, .instance_id = colon + 1,
                    .now_ns = apig_now_ns()};
  snprintf(call.caller, sizeof call.caller, "the --import option");
  apig_new_request_id(reply.request_id);
  call.inst = apig_store_instance(&apig->store, project, colon + 1);
  int rc = -1;
  if (!call.inst) {
    snprintf(text, sizeof text, "instance %s does not exist", instance);
    *errmsg = apig_strdup(text);
    goto done;
  }
  /* A group named after the title means this file was imported before:
   * import into it, so every operation is reported as existing. */
  char name[1024];
  apig_import_group_name(doc, name, sizeof name);
  apig_group *group = NULL;
  for (apig_group *g = call.inst->groups; g; g = g->hh.next)
    if (strcmp(g->name, name) == 0)
      group = g;
  apig_import_document(&call, doc, group);
  int durable = 0;
  if (reply.durable_seq)
    apig_durable_wait(apig, reply.durable_seq, note_durable, &durable);
  if (durable != 0)
    apig_reply_error(&reply, APIG_E_SYSTEM);
  if (reply.status != 200) {
    snprintf(text, sizeof text, "%s: %s", path,
             reply.body.data ? reply.body.data : "import failed");
    *errmsg = apig_strdup(text);
    goto done;
  }
  *summary = apig_buf_steal(&reply.body, NULL);
  rc = 0;
done:
  apig_reply_free(&reply);
  cJSON_Delete(doc);
  return rc;
}
