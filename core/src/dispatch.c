/* Routing and the steps every request goes through: match the path, check
 * the method, authenticate, find the instance, run the handler.
 *
 * Paths match exactly. The path is split on '/' first and each segment is
 * percent-decoded afterwards, so "%2F" stays inside its id. An empty
 * segment (a double or trailing slash) and "." or ".." segments match no
 * route.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "handler.h"
#include "json.h"

#define MAX_SEGMENTS 12
#define PREFIX_SEGMENTS 5 /* v2 {project} apigw instances {instance} */

typedef struct route {
  const char *name;        /* for metrics and logs */
  const char *pattern[4];  /* segments after the instance prefix; "*" = id */
  const char *method;
  apig_handler_fn handler;
  unsigned permission;
} route;

static const route routes[] = {
    {"envs", {"envs"}, "GET", apig_handle_env_list, APIG_PERM_READ},
    {"envs", {"envs"}, "POST", apig_handle_env_create, APIG_PERM_MANAGE},
    {"env", {"envs", "*"}, "PUT", apig_handle_env_update, APIG_PERM_MANAGE},
    {"env", {"envs", "*"}, "DELETE", apig_handle_env_delete,
     APIG_PERM_MANAGE},
    {"groups", {"api-groups"}, "GET", apig_handle_group_list, APIG_PERM_READ},
    {"groups", {"api-groups"}, "POST", apig_handle_group_create,
     APIG_PERM_MANAGE},
    {"group", {"api-groups", "*"}, "GET", apig_handle_group_show,
     APIG_PERM_READ},
    {"group", {"api-groups", "*"}, "PUT", apig_handle_group_update,
     APIG_PERM_MANAGE},
    {"group", {"api-groups", "*"}, "DELETE", apig_handle_group_delete,
     APIG_PERM_MANAGE},
    {"apis", {"apis"}, "GET", apig_handle_api_list, APIG_PERM_READ},
    {"apis", {"apis"}, "POST", apig_handle_api_create, APIG_PERM_MANAGE},
    /* The batch route; its permission depends on the action. */
    {"batch", {"apis", "publish"}, "POST", apig_handle_batch, 0},
    {"action", {"apis", "action"}, "POST", apig_handle_api_action, 0},
    {"versions", {"apis", "publish", "*"}, "GET", apig_handle_version_list,
     APIG_PERM_READ},
    {"versions", {"apis", "publish", "*"}, "PUT", apig_handle_version_switch,
     APIG_PERM_PUBLISH},
    {"version", {"apis", "versions", "*"}, "GET", apig_handle_version_show,
     APIG_PERM_READ},
    {"version", {"apis", "versions", "*"}, "DELETE",
     apig_handle_version_delete, APIG_PERM_OFFLINE},
    {"runtime", {"apis", "runtime", "*"}, "GET", apig_handle_runtime,
     APIG_PERM_READ},
    {"api", {"apis", "*"}, "GET", apig_handle_api_show, APIG_PERM_READ},
    {"api", {"apis", "*"}, "PUT", apig_handle_api_update, APIG_PERM_MANAGE},
    {"api", {"apis", "*"}, "DELETE", apig_handle_api_delete, APIG_PERM_MANAGE},
    {"import", {"openapi", "import"}, "POST", apig_handle_import,
     APIG_PERM_MANAGE},
};

#define ROUTE_COUNT (sizeof routes / sizeof routes[0])
#define ROUTE_HEALTHZ ((int)ROUTE_COUNT)
#define ROUTE_METRICS ((int)ROUTE_COUNT + 1)
#define ROUTE_UNKNOWN ((int)ROUTE_COUNT + 2)

typedef struct path {
  char *segments[MAX_SEGMENTS];
  size_t count;
  char *storage;
} path;

/* Splits and decodes the path part of target. Returns 0, -1 when it can
 * match no route (bad shape, bad escape, NUL, too many segments), or -2
 * when memory ran out. */
static int split_path(const char *target, size_t len, path *out) {
  memset(out, 0, sizeof *out);
  if (len == 0 || target[0] != '/')
    return -1;
  out->storage = apig_malloc(len + 1);
  if (!out->storage)
    return -2;
  size_t start = 1;
  char *write = out->storage;
  for (size_t i = 1; i <= len; i++) {
    if (i < len && target[i] != '/')
      continue;
    size_t seg_len = i - start;
    if (seg_len == 0 || out->count == MAX_SEGMENTS)
      return -1;
    long n = apig_percent_decode(target + start, seg_len, write);
    if (n <= 0 || memchr(write, '\0', (size_t)n) ||
        strcmp(write, ".") == 0 || strcmp(write, "..") == 0)
      return -1;
    out->segments[out->count++] = write;
    write += n + 1;
    start = i + 1;
  }
  return 0;
}

static int segments_match(const route *r, const path *p) {
  size_t n = 0;
  while (n < 4 && r->pattern[n])
    n++;
  if (p->count != PREFIX_SEGMENTS + n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    const char *want = r->pattern[i];
    if (strcmp(want, "*") != 0 &&
        strcmp(want, p->segments[PREFIX_SEGMENTS + i]) != 0)
      return 0;
  }
  return 1;
}

/* A literal segment beats "*": "/apis/publish" is the batch route, never
 * the API whose id is "publish". */
static int route_specificity(const route *r) {
  int literal = 0;
  for (int i = 0; i < 4 && r->pattern[i]; i++)
    literal += strcmp(r->pattern[i], "*") != 0;
  return literal;
}

static int has_instance_prefix(const path *p) {
  return p->count > PREFIX_SEGMENTS && strcmp(p->segments[0], "v2") == 0 &&
         strcmp(p->segments[2], "apigw") == 0 &&
         strcmp(p->segments[3], "instances") == 0;
}

/* Finds the route. Returns its index, -1 for no path, or -2 for a known
 * path with another method (allow then lists the methods). */
static int find_route(const path *p, const char *method, char *allow,
                      size_t allow_size) {
  if (!has_instance_prefix(p))
    return -1;
  int best = -1, best_score = -1, path_known = 0, known_score = -1;
  for (size_t i = 0; i < ROUTE_COUNT; i++) {
    if (!segments_match(&routes[i], p))
      continue;
    int score = route_specificity(&routes[i]);
    if (score > known_score)
      known_score = score;
  }
  allow[0] = '\0';
  for (size_t i = 0; i < ROUTE_COUNT; i++) {
    if (!segments_match(&routes[i], p) ||
        route_specificity(&routes[i]) != known_score)
      continue;
    path_known = 1;
    size_t used = strlen(allow);
    snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
             routes[i].method);
    if (strcmp(routes[i].method, method) == 0 && known_score > best_score) {
      best = (int)i;
      best_score = known_score;
    }
  }
  if (best >= 0)
    return best;
  return path_known ? -2 : -1;
}

/* ---- query ---- */

static void free_params(apig_call *call) {
  for (size_t i = 0; i < call->param_count; i++)
    apig_free(call->params[i].key);
  call->param_count = 0;
}

/* Splits the query on '&' and decodes each key and value. Returns 0, -1
 * for a malformed escape or too many parameters, or -2 when memory ran
 * out. */
static int parse_query(apig_call *call, const char *query, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && query[i] != '&')
      continue;
    size_t part = i - start;
    const char *text = query + start;
    start = i + 1;
    if (part == 0)
      continue;
    if (call->param_count == APIG_MAX_QUERY_PARAMS)
      return -1;
    const char *eq = memchr(text, '=', part);
    size_t key_len = eq ? (size_t)(eq - text) : part;
    size_t value_len = eq ? part - key_len - 1 : 0;
    char *storage = apig_malloc(part + 2);
    if (!storage)
      return -2;
    apig_param *param = &call->params[call->param_count++];
    param->key = storage;
    long k = apig_percent_decode(text, key_len, storage);
    long v = k < 0 ? -1
                   : apig_percent_decode(eq ? eq + 1 : "", value_len,
                                         storage + k + 1);
    if (k < 0 || v < 0)
      return -1;
    param->key_len = (size_t)k;
    param->value = storage + k + 1;
    param->value_len = (size_t)v;
  }
  return 0;
}

size_t apig_query_count(const apig_call *call, const char *key) {
  size_t n = 0, key_len = strlen(key);
  for (size_t i = 0; i < call->param_count; i++)
    n += call->params[i].key_len == key_len &&
         memcmp(call->params[i].key, key, key_len) == 0;
  return n;
}

const apig_param *apig_query(const apig_call *call, const char *key) {
  size_t key_len = strlen(key);
  for (size_t i = 0; i < call->param_count; i++)
    if (call->params[i].key_len == key_len &&
        memcmp(call->params[i].key, key, key_len) == 0)
      return &call->params[i];
  return NULL;
}

/* Parses a decimal integer. A value too large for a long is clamped to
 * LONG_MAX or LONG_MIN, since paging caps it anyway: limit
 * 99999999999999999999 means 500, like any limit above 500. */
static int parse_long(const apig_param *param, long *out) {
  if (param->value_len == 0)
    return -1;
  char *end;
  errno = 0;
  long value = strtol(param->value, &end, 10);
  if (end != param->value + param->value_len ||
      isspace((unsigned char)param->value[0]) || param->value[0] == '+' ||
      (errno != 0 && errno != ERANGE))
    return -1;
  *out = value;
  return 0;
}

int apig_paging(apig_call *call, long *offset, long *limit) {
  *offset = 0;
  *limit = 20;
  const apig_param *p = apig_query(call, "offset");
  if (p && parse_long(p, offset) != 0) {
    apig_reply_error(call->reply, APIG_E_QUERY_INVALID, "offset");
    return -1;
  }
  p = apig_query(call, "limit");
  if (p && parse_long(p, limit) != 0) {
    apig_reply_error(call->reply, APIG_E_QUERY_INVALID, "limit");
    return -1;
  }
  if (*offset < 0)
    *offset = 0;
  if (*limit <= 0)
    *limit = 20;
  if (*limit > 500)
    *limit = 500;
  return 0;
}

cJSON *apig_body_object(apig_call *call) {
  char err[160];
  cJSON *root = apig_json_parse(call->req->body ? call->req->body : "",
                                call->req->body_len, err, sizeof err);
  if (!root) {
    if (apig_json_out_of_memory(err))
      apig_reply_error(call->reply, APIG_E_SYSTEM);
    else
      apig_reply_error(call->reply, APIG_E_SERIALIZATION, err);
    return NULL;
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    apig_reply_error(call->reply, APIG_E_SERIALIZATION,
                     "the body must be a JSON object");
    return NULL;
  }
  return root;
}

/* ---- the steps ---- */

size_t apig_find_header(const apig_header *headers, size_t count,
                        const char *name, const apig_header **first) {
  size_t n = 0, name_len = strlen(name);
  if (first)
    *first = NULL;
  for (size_t i = 0; i < count; i++) {
    if (headers[i].name_len != name_len ||
        strncasecmp(headers[i].name, name, name_len) != 0)
      continue;
    if (n++ == 0 && first)
      *first = &headers[i];
  }
  return n;
}

static void serve_health(apig_t *apig, apig_reply *reply) {
  reply->status = 200;
  apig_buf_puts(&reply->body, "{\"status\":\"ok\"}");
}

static void serve_metrics(apig_t *apig, apig_reply *reply) {
  reply->status = 200;
  reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
  apig_render_metrics(apig, &reply->body);
}

static unsigned batch_permission(const apig_call *call) {
  const apig_param *action = apig_query(call, "action");
  if (action && strcmp(action->value, "offline") == 0)
    return APIG_PERM_OFFLINE;
  return APIG_PERM_PUBLISH;
}

/* The single publish call names its action in the body; reading it here
 * keeps the permission check ahead of every other check. */
static unsigned action_permission(const apig_req *req) {
  char err[8];
  cJSON *root = apig_json_parse(req->body ? req->body : "", req->body_len,
                                err, sizeof err);
  const cJSON *action = cJSON_GetObjectItemCaseSensitive(root, "action");
  unsigned permission = APIG_PERM_PUBLISH;
  if (cJSON_IsString(action) && strcmp(action->valuestring, "offline") == 0)
    permission = APIG_PERM_OFFLINE;
  cJSON_Delete(root);
  return permission;
}

static apig_error authenticate(apig_call *call, const route *r) {
  const apig_req *req = call->req;
  const char *query = memchr(req->target, '?', req->target_len);
  size_t path_len = query ? (size_t)(query - req->target) : req->target_len;
  unsigned permission = r->permission;
  if (r->handler == apig_handle_batch)
    permission = batch_permission(call);
  else if (r->handler == apig_handle_api_action)
    permission = action_permission(req);
  apig_auth_request auth = {
      .method = req->method,
      .raw_path = req->target,
      .raw_path_len = path_len,
      .raw_query = query ? query + 1 : "",
      .raw_query_len = query ? req->target_len - path_len - 1 : 0,
      .headers = req->headers,
      .header_count = req->header_count,
      .body = req->body ? req->body : "",
      .body_len = req->body_len,
      .project_id = call->project_id,
      .permission = permission,
      .now_ns = call->now_ns,
  };
  return apig_authenticate(call->apig->credentials, &auth, call->caller,
                           sizeof call->caller);
}

/* Copies the path for a message: at most 200 bytes, printable ASCII only,
 * so the error body stays valid JSON whatever the client sent. */
static void printable_path(const char *target, size_t len, char *out,
                           size_t size) {
  size_t n = len < size - 1 ? len : size - 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)target[i];
    out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  out[n] = '\0';
}

static int dispatch_route(apig_call *call, const path *p, size_t path_len) {
  const apig_req *req = call->req;
  char allow[64], shown[201];
  printable_path(req->target, path_len, shown, sizeof shown);
  int index = find_route(p, req->method, allow, sizeof allow);
  if (index == -1) {
    apig_reply_error(call->reply, APIG_E_ROUTE_NOT_FOUND, req->method, shown);
    return ROUTE_UNKNOWN;
  }
  if (index == -2) {
    apig_reply_error(call->reply, APIG_E_METHOD_NOT_ALLOWED, req->method,
                     shown);
    snprintf(call->reply->allow, sizeof call->reply->allow, "%s", allow);
    return ROUTE_UNKNOWN;
  }
  const route *r = &routes[index];
  call->project_id = p->segments[1];
  call->instance_id = p->segments[4];
  size_t n = 0;
  while (n < 4 && r->pattern[n])
    n++;
  if (strcmp(r->pattern[n - 1], "*") == 0)
    call->path_id = p->segments[p->count - 1];
  apig_error error = authenticate(call, r);
  if (error != APIG_E_OK) {
    apig_reply_error(call->reply, error);
    return index;
  }
  call->inst = apig_store_instance(&call->apig->store, call->project_id,
                                   call->instance_id);
  if (!call->inst) {
    apig_reply_error(call->reply, APIG_E_INSTANCE_NOT_FOUND);
    return index;
  }
  r->handler(call);
  return index;
}

const char *apig_route_name(int index) {
  if (index >= 0 && index < (int)ROUTE_COUNT)
    return routes[index].name;
  if (index == ROUTE_HEALTHZ)
    return "healthz";
  if (index == ROUTE_METRICS)
    return "metrics";
  return "unknown";
}

void apig_dispatch(apig_t *apig, const apig_req *req, apig_reply *reply) {
  int64_t start = apig_now_ns();
  if (apig_new_request_id(reply->request_id) != 0)
    strcpy(reply->request_id, "00000000000000000000000000000000");
  memcpy(apig->request_id, reply->request_id, sizeof apig->request_id);

  const char *query = memchr(req->target, '?', req->target_len);
  size_t path_len = query ? (size_t)(query - req->target) : req->target_len;
  int route_index = ROUTE_UNKNOWN;

  int health = path_len == 8 && memcmp(req->target, "/healthz", 8) == 0;
  int metrics = path_len == 8 && memcmp(req->target, "/metrics", 8) == 0;
  if ((health || metrics) && strcmp(req->method, "GET") != 0) {
    apig_reply_error(reply, APIG_E_METHOD_NOT_ALLOWED, req->method,
                     health ? "/healthz" : "/metrics");
    strcpy(reply->allow, "GET");
  } else if (health) {
    serve_health(apig, reply);
    route_index = ROUTE_HEALTHZ;
  } else if (metrics) {
    serve_metrics(apig, reply);
    route_index = ROUTE_METRICS;
  } else {
    apig_call call;
    memset(&call, 0, sizeof call);
    call.apig = apig;
    call.req = req;
    call.reply = reply;
    call.now_ns = start;
    path p;
    int split = split_path(req->target, path_len, &p), parsed = 0;
    if (split == -2) {
      apig_reply_error(reply, APIG_E_SYSTEM);
    } else if (split != 0) {
      char shown[201];
      printable_path(req->target, path_len, shown, sizeof shown);
      apig_reply_error(reply, APIG_E_ROUTE_NOT_FOUND, req->method, shown);
    } else if (query && (parsed = parse_query(&call, query + 1,
                                              req->target_len - path_len -
                                                  1)) != 0) {
      if (parsed == -2)
        apig_reply_error(reply, APIG_E_SYSTEM);
      else
        apig_reply_error(reply, APIG_E_QUERY_INVALID, "query");
    } else {
      route_index = dispatch_route(&call, &p, path_len);
    }
    free_params(&call);
    apig_free(p.storage);
  }
  int64_t duration = apig_now_ns() - start;
  apig_metrics_request(&apig->metrics, route_index,
                       apig_route_name(route_index), reply->status, duration);
  apig_logf(&apig->logger, APIG_LOG_DEBUG, reply->request_id,
            "%s %.*s %d %.3f ms from %s", req->method, (int)path_len,
            req->target, reply->status, (double)duration / 1e6,
            req->peer && req->peer[0] ? req->peer : "in-process");
  apig->request_id[0] = '\0';
}
