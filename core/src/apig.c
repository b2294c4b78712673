/* The public handle: open, close, in-process requests, commits. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "apig_impl.h"
#include "handler.h"

#ifndef APIG_LUA_HELPERS_DIR
#define APIG_LUA_HELPERS_DIR NULL
#endif

unsigned apig_version(void) { return APIG_VERSION_NUMBER; }
const char *apig_version_string(void) { return APIG_VERSION_STRING; }

void apig_options_init(apig_options *options) {
  memset(options, 0, sizeof *options);
  options->log_level = APIG_LOG_INFO;
}

/* Messages for the host come from the C library's malloc, not from the
 * handle's allocator: a failed apig_open has no handle left to free them
 * with. */
void apig_string_free(char *s) { free(s); }

/* Moves *errmsg, allocated with the handle's allocator, into a malloc'd
 * copy for the host. */
static void export_message(char **errmsg) {
  if (!errmsg || !*errmsg)
    return;
  char *copy = strdup(*errmsg);
  apig_free(*errmsg);
  *errmsg = copy;
}

const apig_logger *apig_get_logger(const apig_t *apig) {
  return &apig->logger;
}

static void set_error(char **errmsg, const char *fmt, const char *a,
                      const char *b) {
  if (!errmsg)
    return;
  char text[1024];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  snprintf(text, sizeof text, fmt, a ? a : "", b ? b : "");
#pragma GCC diagnostic pop
  *errmsg = apig_strdup(text);
}

static void apply_defaults(apig_options *o) {
  if (!o->policy_budget)
    o->policy_budget = 1000000;
  if (!o->policy_memory)
    o->policy_memory = 64u << 20;
  if (!o->max_body)
    o->max_body = 1u << 20;
  if (!o->max_import_body)
    o->max_import_body = 16u << 20;
  if (!o->group_api_quota)
    o->group_api_quota = 1000;
  if (!o->env_quota)
    o->env_quota = 10;
  if (!o->snapshot_interval_ms)
    o->snapshot_interval_ms = 3600000;
  if (!o->journal_max_bytes)
    o->journal_max_bytes = 64u << 20;
}

static void note_status(void *arg, int status) { *(int *)arg = status; }

int apig_add_instance(apig_t *apig, const char *spec, char **errmsg) {
  const char *colon = spec ? strchr(spec, ':') : NULL;
  if (!colon || colon == spec || !colon[1] || strchr(colon + 1, ':') ||
      strchr(spec, '/') || colon - spec > 200 || strlen(colon + 1) > 200) {
    set_error(errmsg,
              "invalid instance \"%s\": expected PROJECT_ID:INSTANCE_ID "
              "without '/' or a second ':'",
              spec ? spec : "(null)", NULL);
    return -1;
  }
  char project[256];
  snprintf(project, sizeof project, "%.*s", (int)(colon - spec), spec);
  if (apig_store_instance(&apig->store, project, colon + 1))
    return 0;
  apig_op op = {.kind = APIG_OP_INSTANCE_CREATE,
                .project_id = project,
                .instance_id = colon + 1,
                .time_ns = apig_now_ns()};
  uint64_t seq = apig->persist ? apig_persist_append(apig->persist, &op, 1)
                               : 0;
  if ((apig->persist && seq == 0) ||
      apig_store_apply(&apig->store, &op, 1) != 0) {
    set_error(errmsg, "cannot create instance %s: %s", spec,
              "the journal write failed or memory ran out");
    return -1;
  }
  /* Flushed now, so that no later failed flush can take it back. */
  int durable = 0;
  if (seq)
    apig_persist_wait(apig->persist, seq, note_status, &durable);
  if (durable != 0) {
    set_error(errmsg, "cannot create instance %s: %s", spec,
              "the journal flush failed");
    return -1;
  }
  apig_logf(&apig->logger, APIG_LOG_INFO, NULL, "created instance %s", spec);
  return 0;
}

/* Creates the instances named "PROJECT_ID:INSTANCE_ID" that are missing. */
static int create_instances(apig_t *apig, char **errmsg) {
  for (size_t i = 0; i < apig->options.instance_count; i++)
    if (apig_add_instance(apig, apig->options.instances[i], errmsg) != 0)
      return -1;
  return 0;
}

static void *cjson_malloc(size_t size) { return apig_malloc(size); }

static int open_parts(apig_t *apig, char **errmsg) {
  apig_options *o = &apig->options;
  if (apig->data_dir) {
    apig_persist_options po = {o->fsync_mode, o->snapshot_interval_ms,
                               o->journal_max_bytes, apig->allocator};
    apig->persist = apig_persist_open(apig->data_dir, &po, &apig->logger,
                                      &apig->store, errmsg);
    if (!apig->persist)
      return -1;
  }
  if (create_instances(apig, errmsg) != 0)
    return -1;
  if (apig->policy_file) {
    apig_policy_limits limits = {o->policy_budget, o->policy_memory};
    apig->policy = apig_policy_load(apig->policy_file, APIG_LUA_HELPERS_DIR,
                                    &limits, &apig->logger, errmsg);
    if (!apig->policy)
      return -1;
  }
  if (apig->credentials_file) {
    apig->credentials = apig_credentials_load(apig->credentials_file,
                                              &apig->logger, errmsg);
    if (!apig->credentials)
      return -1;
  }
  return 0;
}

apig_t *apig_open(const apig_options *options, char **errmsg) {
  if (errmsg)
    *errmsg = NULL;
  if (!options) {
    set_error(errmsg, "options must not be NULL", NULL, NULL);
    return NULL;
  }
  const apig_allocator *previous = apig_alloc_enter(options->allocator);
  cJSON_Hooks hooks = {cjson_malloc, apig_free};
  cJSON_InitHooks(&hooks);
  apig_t *apig = apig_calloc(1, sizeof *apig);
  if (!apig) {
    apig_alloc_leave(previous);
    if (errmsg)
      *errmsg = NULL;
    return NULL;
  }
  apig->options = *options;
  apig->allocator = options->allocator;
  apply_defaults(&apig->options);
  apig->logger = (apig_logger){options->log, options->log_ud,
                               options->log_level, options->log_flush};
  apig_store_init(&apig->store);
  apig_metrics_init(&apig->metrics);
  int failed = 0;
#define COPY(field)                                                           \
  if (options->field && !(apig->field = apig_strdup(options->field)))         \
    failed = 1;
  COPY(data_dir)
  COPY(policy_file)
  COPY(credentials_file)
#undef COPY
  apig->options.instances = NULL;
  if (failed) {
    set_error(errmsg, "out of memory", NULL, NULL);
  } else {
    apig->options.instances = options->instances;
    failed = open_parts(apig, errmsg) != 0;
    apig->options.instances = NULL;
    apig->options.instance_count = 0;
  }
  if (failed) {
    apig_close(apig);
    export_message(errmsg);
    apig_alloc_leave(previous);
    return NULL;
  }
  if (!apig->credentials)
    apig_logf(&apig->logger, APIG_LOG_WARN, NULL,
              "development mode: any non-empty token and any AK/SK "
              "signature are accepted");
  apig_alloc_leave(previous);
  return apig;
}

int apig_close(apig_t *apig) {
  if (!apig)
    return 0;
  if (apig->server) {
    apig_logf(&apig->logger, APIG_LOG_ERROR, NULL,
              "apig_close: the handle is still serving; call "
              "apig_serve_stop and let the loop finish first");
    return -1;
  }
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  if (apig->persist)
    apig_persist_close(apig->persist, &apig->store);
  apig_policy_free(apig->policy);
  apig_credentials_free(apig->credentials);
  apig_store_free(&apig->store);
  apig_free(apig->data_dir);
  apig_free(apig->policy_file);
  apig_free(apig->credentials_file);
  apig_free(apig);
  apig_alloc_leave(previous);
  return 0;
}

int apig_commit(apig_call *call, const apig_op *ops, size_t count) {
  apig_t *apig = call->apig;
  uint64_t seq = 0;
  if (apig->persist) {
    seq = apig_persist_append(apig->persist, ops, count);
    if (seq == 0) {
      apig_logf(&apig->logger, APIG_LOG_ERROR, call->reply->request_id,
                "journal write failed; %zu changes not applied", count);
      apig_reply_error(call->reply, APIG_E_SYSTEM);
      return -1;
    }
  }
  int rc = apig_store_apply(&apig->store, ops, count);
  if (rc != 0) {
    apig_logf(&apig->logger, APIG_LOG_ERROR, call->reply->request_id,
              "applying %zu changes failed (%s)", count,
              rc == -1 ? "out of memory" : "inconsistent change");
    if (apig->persist)
      apig_persist_rollback(apig->persist, seq);
    apig_reply_error(call->reply, APIG_E_SYSTEM);
    return -1;
  }
  call->reply->durable_seq = seq;
  return 0;
}

void apig_durable_wait(apig_t *apig, uint64_t seq, apig_durable_cb cb,
                       void *arg) {
  if (!apig->persist || seq == 0) {
    cb(arg, 0);
    return;
  }
  apig_persist_wait(apig->persist, seq, cb, arg);
}

size_t apig_body_limit(const apig_t *apig, const char *path, size_t len) {
  static const char suffix[] = "/openapi/import";
  size_t n = sizeof suffix - 1;
  if (len >= n && memcmp(path + len - n, suffix, n) == 0)
    return apig->options.max_import_body;
  return apig->options.max_body;
}

/* A response remembers the allocator it came from, because the host frees
 * it outside any call on the handle. */
typedef struct owned_response {
  apig_response response; /* first, so the two pointers convert */
  const apig_allocator *allocator;
} owned_response;

void apig_response_free(apig_response *response) {
  if (!response)
    return;
  owned_response *owned = (owned_response *)response;
  const apig_allocator *previous = apig_alloc_enter(owned->allocator);
  apig_free(response->headers);
  apig_free(response->body);
  apig_free(owned);
  apig_alloc_leave(previous);
}

static void sync_done(void *arg, int status) { *(int *)arg = status; }

/* Copies the reply into a response: headers and their strings live in one
 * block after the array. */
static apig_response *make_response(const apig_t *apig,
                                    const apig_reply *reply) {
  apig_header headers[4];
  size_t n = apig_reply_headers(reply, headers);
  size_t strings = 0;
  for (size_t i = 0; i < n; i++)
    strings += headers[i].name_len + headers[i].value_len + 2;
  owned_response *owned = apig_calloc(1, sizeof *owned);
  if (!owned)
    return NULL;
  owned->allocator = apig->allocator;
  apig_response *response = &owned->response;
  response->headers = apig_malloc(n * sizeof(apig_header) + strings);
  response->body = apig_malloc(reply->body.len + 1);
  if (!response->headers || !response->body) {
    apig_response_free(response);
    return NULL;
  }
  char *text = (char *)(response->headers + n);
  for (size_t i = 0; i < n; i++) {
    apig_header *h = &response->headers[i];
    memcpy(text, headers[i].name, headers[i].name_len);
    text[headers[i].name_len] = '\0';
    h->name = text;
    h->name_len = headers[i].name_len;
    text += h->name_len + 1;
    memcpy(text, headers[i].value, headers[i].value_len);
    text[headers[i].value_len] = '\0';
    h->value = text;
    h->value_len = headers[i].value_len;
    text += h->value_len + 1;
  }
  response->header_count = n;
  if (reply->body.len)
    memcpy(response->body, reply->body.data, reply->body.len);
  response->body[reply->body.len] = '\0';
  response->body_len = reply->body.len;
  response->status = reply->status;
  return response;
}

int apig_request(apig_t *apig, const char *method, const char *target,
                 const apig_header *headers, size_t header_count,
                 const char *body, size_t body_len, apig_response **out) {
  if (out)
    *out = NULL;
  if (!apig || !method || !target || !out || (header_count && !headers) ||
      (body_len && !body))
    return -1;
  /* While serving, journal flushes complete on the loop, after this call
   * would have returned. */
  if (apig->server)
    return -1;
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  apig_req req = {method,  target,       strlen(target), headers,
                  header_count, body, body_len, ""};
  apig_reply reply;
  apig_reply_init(&reply);
  int rc = 0;
  size_t limit = apig_body_limit(apig, target, strcspn(target, "?"));
  if (body_len > limit) {
    char text[32];
    snprintf(text, sizeof text, "%zu", limit);
    apig_new_request_id(reply.request_id);
    apig_reply_error(&reply, APIG_E_BODY_TOO_LARGE, text);
  } else {
    apig_dispatch(apig, &req, &reply);
  }
  if (reply.durable_seq) {
    int status = 1;
    apig_durable_wait(apig, reply.durable_seq, sync_done, &status);
    if (status != 0)
      apig_reply_error(&reply, APIG_E_SYSTEM);
  }
  if (reply.body.failed)
    rc = -1;
  else if (!(*out = make_response(apig, &reply)))
    rc = -1;
  apig_reply_free(&reply);
  apig_alloc_leave(previous);
  return rc;
}

int apig_snapshot(apig_t *apig) {
  if (!apig || !apig->persist)
    return -1;
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  int rc = apig_persist_snapshot(apig->persist, &apig->store);
  apig_alloc_leave(previous);
  return rc;
}

int apig_snapshot_background(apig_t *apig) {
  if (!apig || !apig->persist)
    return -1;
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  int rc = apig_persist_snapshot_background(apig->persist);
  apig_alloc_leave(previous);
  return rc;
}

int apig_reload_policy(apig_t *apig) {
  if (!apig->policy_file)
    return 0;
  char *errmsg = NULL;
  apig_policy_limits limits = {apig->options.policy_budget,
                               apig->options.policy_memory};
  apig_policy *fresh = apig_policy_load(
      apig->policy_file, APIG_LUA_HELPERS_DIR, &limits, &apig->logger, &errmsg);
  if (!fresh) {
    apig_logf(&apig->logger, APIG_LOG_ERROR, NULL,
              "policy reload failed, the previous policy stays: %s",
              errmsg ? errmsg : "unknown error");
    apig_free(errmsg);
    return -1;
  }
  if (apig->policy)
    apig_metrics_retire_policy(&apig->metrics,
                               apig_policy_get_stats(apig->policy));
  apig_policy_free(apig->policy);
  apig->policy = fresh;
  apig_logf(&apig->logger, APIG_LOG_INFO, NULL, "policy reloaded from %s",
            apig->policy_file);
  return 0;
}

int apig_reload_credentials(apig_t *apig) {
  if (!apig->credentials_file)
    return 0;
  char *errmsg = NULL;
  apig_credentials *fresh = apig_credentials_load(apig->credentials_file,
                                                  &apig->logger, &errmsg);
  if (!fresh) {
    apig_logf(&apig->logger, APIG_LOG_ERROR, NULL,
              "credentials reload failed, the previous ones stay: %s",
              errmsg ? errmsg : "unknown error");
    apig_free(errmsg);
    return -1;
  }
  apig_credentials_free(apig->credentials);
  apig->credentials = fresh;
  apig_logf(&apig->logger, APIG_LOG_INFO, NULL, "credentials reloaded from %s",
            apig->credentials_file);
  return 0;
}
