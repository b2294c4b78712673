/* Batch publish and take offline for embedding hosts: the request is built
 * as the HTTP body, run through apig_request, and the JSON answer is turned
 * into C structs whose strings live in one block. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "apig_impl.h"

/* Appends s percent-encoded as one path segment. */
static void put_segment(apig_buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      apig_buf_putc(b, (char)c);
    } else {
      apig_buf_putc(b, '%');
      apig_buf_putc(b, hex[c >> 4]);
      apig_buf_putc(b, hex[c & 15]);
    }
  }
}

static void build_target(apig_buf *b, const apig_batch_request *request) {
  apig_buf_puts(b, "/v2/");
  put_segment(b, request->project_id);
  apig_buf_puts(b, "/apigw/instances/");
  put_segment(b, request->instance_id);
  apig_buf_puts(b, request->action == APIG_BATCH_OFFLINE
                       ? "/apis/publish?action=offline"
                       : "/apis/publish?action=online");
}

static void put_field(apig_buf *b, const char *name, const char *value) {
  if (!value)
    return;
  apig_buf_putc(b, b->len > 1 ? ',' : '{');
  apig_buf_json_cstr(b, name);
  apig_buf_putc(b, ':');
  apig_buf_json_cstr(b, value);
}

static void build_body(apig_buf *b, const apig_batch_request *request) {
  apig_buf_putc(b, ' ');
  if (request->api_count > 0) {
    apig_buf_puts(b, "{\"apis\":[");
    for (size_t i = 0; i < request->api_count; i++) {
      if (i > 0)
        apig_buf_putc(b, ',');
      apig_buf_json_cstr(b, request->api_ids[i] ? request->api_ids[i] : "");
    }
    apig_buf_putc(b, ']');
  }
  put_field(b, "group_id", request->group_id);
  put_field(b, "env_id", request->env_id);
  put_field(b, "remark", request->remark);
  apig_buf_puts(b, b->len > 1 ? "}" : "{}");
}

/* ---- turning the answer into a result ---- */

/* Item fields in the order of apig_batch_item, all const char *. */
static const char *const item_keys[] = {
    "api_id",       "api_name", "env_id",     "version_id", "publish_id",
    "publish_time", "remark",   "error_code", "error_msg"};
#define ITEM_FIELDS (sizeof item_keys / sizeof item_keys[0])

/* A string field of object, or NULL when absent or not a string. */
static const char *string_field(const cJSON *object, const char *key) {
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, key));
}

static size_t string_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static size_t items_text_size(const cJSON *array) {
  size_t size = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, array) {
    for (size_t k = 0; k < ITEM_FIELDS; k++)
      size += string_size(string_field(item, item_keys[k]));
  }
  return size;
}

/* Copies s to *text and returns the copy, or NULL for NULL. */
static const char *copy_text(char **text, const char *s, size_t len) {
  if (!s)
    return NULL;
  char *copy = *text;
  memcpy(copy, s, len);
  copy[len] = '\0';
  *text += len + 1;
  return copy;
}

static const char *copy_cstr(char **text, const char *s) {
  return s ? copy_text(text, s, strlen(s)) : NULL;
}

static void copy_items(apig_batch_item *items, const cJSON *array,
                       char **text) {
  size_t i = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, array) {
    const char **fields = (const char **)&items[i++];
    for (size_t k = 0; k < ITEM_FIELDS; k++)
      fields[k] = copy_cstr(text, string_field(item, item_keys[k]));
  }
}

static const char *response_request_id(const apig_response *response) {
  for (size_t i = 0; i < response->header_count; i++)
    if (strcasecmp(response->headers[i].name, "X-Request-Id") == 0)
      return response->headers[i].value;
  return NULL;
}

/* A result remembers the allocator it came from, because the host frees
 * it outside any call on the handle. */
typedef struct owned_result {
  apig_batch_result result; /* first, so the two pointers convert */
  const apig_allocator *allocator;
} owned_result;

/* Builds the result in one allocation: the struct, both item arrays, then
 * every string. Returns NULL when allocating fails. */
static apig_batch_result *make_result(const apig_t *apig,
                                      const apig_response *response,
                                      const cJSON *root) {
  const cJSON *success = NULL, *failure = NULL;
  const char *code = NULL, *message = NULL;
  if (response->status == 200) {
    success = cJSON_GetObjectItemCaseSensitive(root, "success");
    failure = cJSON_GetObjectItemCaseSensitive(root, "failure");
  } else {
    code = string_field(root, "error_code");
    message = string_field(root, "error_msg");
  }
  size_t success_count = (size_t)cJSON_GetArraySize(success);
  size_t failure_count = (size_t)cJSON_GetArraySize(failure);
  const char *request_id = response_request_id(response);
  size_t text_size = items_text_size(success) + items_text_size(failure) +
                     string_size(code) + string_size(message) +
                     string_size(request_id) + response->body_len + 1;
  size_t head = sizeof(owned_result) +
                (success_count + failure_count) * sizeof(apig_batch_item);
  owned_result *owned = apig_calloc(1, head + text_size);
  if (!owned)
    return NULL;
  owned->allocator = apig->allocator;
  apig_batch_result *result = &owned->result;
  char *text = (char *)owned + head;
  result->status = response->status;
  result->success = (apig_batch_item *)(owned + 1);
  result->success_count = success_count;
  result->failure = result->success + success_count;
  result->failure_count = failure_count;
  copy_items(result->success, success, &text);
  copy_items(result->failure, failure, &text);
  result->error_code = copy_cstr(&text, code);
  result->error_msg = copy_cstr(&text, message);
  result->request_id = copy_cstr(&text, request_id);
  result->body = copy_text(&text, response->body, response->body_len);
  result->body_len = response->body_len;
  return result;
}

/* Parses the answer and builds the result. An answer that is not the
 * expected JSON (it always is) still gives a result with status and body.
 * Returns NULL when allocating fails. */
static apig_batch_result *parse_result(const apig_t *apig,
                                       const apig_response *response) {
  cJSON *root = NULL;
  if (response->body_len > 0) {
    root = cJSON_ParseWithLength(response->body, response->body_len);
    if (!root)
      return NULL;
  }
  apig_batch_result *result = make_result(apig, response, root);
  cJSON_Delete(root);
  return result;
}

static int valid_request(const apig_batch_request *request) {
  return request->project_id && request->instance_id &&
         (request->api_ids || request->api_count == 0) &&
         (request->action == APIG_BATCH_ONLINE ||
          request->action == APIG_BATCH_OFFLINE);
}

static int run_batch(apig_t *apig, const apig_batch_request *request,
                     apig_batch_result **out) {
  apig_buf target, body;
  apig_buf_init(&target);
  apig_buf_init(&body);
  build_target(&target, request);
  build_body(&body, request);
  int rc = -1;
  if (!target.failed && !body.failed) {
    const char *token = request->token ? request->token : "embedded";
    apig_header headers[2] = {
        {"X-Auth-Token", 12, token, strlen(token)},
        {"Content-Type", 12, "application/json", 16}};
    apig_response *response = NULL;
    /* body.data + 1 skips the leading space that marks an empty object. */
    if (apig_request(apig, "POST", target.data, headers, 2, body.data + 1,
                     body.len - 1, &response) == 0) {
      *out = parse_result(apig, response);
      rc = *out ? 0 : -1;
    }
    apig_response_free(response);
  }
  apig_buf_free(&target);
  apig_buf_free(&body);
  return rc;
}

int apig_batch(apig_t *apig, const apig_batch_request *request,
               apig_batch_result **out) {
  if (out)
    *out = NULL;
  if (!apig || !request || !out || !valid_request(request))
    return -1;
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  int rc = run_batch(apig, request, out);
  apig_alloc_leave(previous);
  return rc;
}

int apig_publish(apig_t *apig, const char *project_id,
                 const char *instance_id, apig_batch_action action,
                 const char *const *api_ids, size_t count, const char *env_id,
                 const char *remark, apig_batch_result **out) {
  apig_batch_request request = {.project_id = project_id,
                                .instance_id = instance_id,
                                .action = action,
                                .api_ids = api_ids,
                                .api_count = count,
                                .env_id = env_id,
                                .remark = remark};
  return apig_batch(apig, &request, out);
}

void apig_batch_result_free(apig_batch_result *result) {
  if (!result)
    return;
  owned_result *owned = (owned_result *)result;
  const apig_allocator *previous = apig_alloc_enter(owned->allocator);
  apig_free(owned);
  apig_alloc_leave(previous);
}
