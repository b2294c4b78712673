/* The public C API, one section per function: results, misuse with NULL
 * and out-of-order calls, and allocation failures injected through the
 * host allocator (each allocation fails in turn) for apig_open and for a
 * batch request, checking for leaks and half-applied state. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "apig.h"
#include "testlib.h"

#define RELEASE "DEFAULT_ENVIRONMENT_RELEASE_ID"
#define BASE "/v2/p1/apigw/instances/i1"

/* ---- a counting allocator that can fail the Nth allocation ---- */

typedef struct counting {
  long live;    /* blocks allocated and not yet freed */
  long calls;   /* allocations and resizes so far */
  long fail_at; /* 0: never fail; else fail call number fail_at */
  int failed;   /* a failure was injected */
} counting;

static void *counting_realloc(void *ud, void *ptr, size_t size) {
  counting *c = ud;
  if (size == 0) {
    if (ptr)
      c->live--;
    free(ptr);
    return NULL;
  }
  c->calls++;
  if (c->fail_at && c->calls == c->fail_at) {
    c->failed = 1;
    return NULL;
  }
  void *block = realloc(ptr, size);
  if (block && !ptr)
    c->live++;
  return block;
}

static char *make_temp_dir(void) {
  char *dir = strdup("/tmp/apig-test-api-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    exit(1);
  }
  return dir;
}

static void remove_dir(const char *dir) {
  char command[256];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  if (system(command) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
}

static const char *instances[] = {"p1:i1"};

static apig_options base_options(void) {
  apig_options o;
  apig_options_init(&o);
  o.instances = instances;
  o.instance_count = 1;
  o.fsync_mode = APIG_FSYNC_OFF;
  return o;
}

/* Sends one request with a development token; returns the status, or -1.
 * The body of the answer goes to body_out (free with apig_response_free
 * through *response_out) when response_out is not NULL. */
static int call(apig_t *apig, const char *method, const char *target,
                const char *body, apig_response **response_out) {
  apig_header token = {"X-Auth-Token", 12, "dev", 3};
  apig_response *response = NULL;
  int rc = apig_request(apig, method, target, &token, 1, body,
                        body ? strlen(body) : 0, &response);
  if (rc != 0)
    return -1;
  int status = response->status;
  if (response_out)
    *response_out = response;
  else
    apig_response_free(response);
  return status;
}

/* Copies the value of the first "key":"..." in text into out. */
static void json_string(const char *text, const char *key, char *out,
                        size_t size) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *start = strstr(text, pattern);
  out[0] = '\0';
  if (!start)
    return;
  start += strlen(pattern);
  const char *end = strchr(start, '"');
  snprintf(out, size, "%.*s", (int)(end - start), start);
}

/* Creates a group and `count` MOCK APIs; stores their ids. */
static int create_apis(apig_t *apig, char ids[][33], int count) {
  apig_response *response = NULL;
  if (call(apig, "POST", BASE "/api-groups", "{\"name\":\"shop\"}",
           &response) != 201)
    return -1;
  char group[33];
  json_string(response->body, "id", group, sizeof group);
  apig_response_free(response);
  for (int i = 0; i < count; i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"group_id\":\"%s\",\"name\":\"api_%d\",\"type\":1,"
             "\"req_protocol\":\"HTTPS\",\"req_method\":\"GET\","
             "\"req_uri\":\"/api/%d\",\"auth_type\":\"NONE\","
             "\"backend_type\":\"MOCK\",\"mock_info\":{\"result_content\":"
             "\"ok\"}}",
             group, i, i);
    if (call(apig, "POST", BASE "/apis", body, &response) != 201)
      return -1;
    json_string(response->body, "id", ids[i], 33);
    apig_response_free(response);
  }
  return 0;
}

/* Counts the APIs published in RELEASE. */
static int published_count(apig_t *apig) {
  apig_response *response = NULL;
  if (call(apig, "GET", BASE "/apis?env_id=" RELEASE, NULL, &response) !=
      200)
    return -1;
  char total[16];
  const char *p = strstr(response->body, "\"total\":");
  snprintf(total, sizeof total, "%s", p ? p + 8 : "-1");
  apig_response_free(response);
  return atoi(total);
}

/* ---- one section per function ---- */

static void test_version(void) {
  CHECK_INT(apig_version(), APIG_VERSION_NUMBER);
  CHECK_STR(apig_version_string(), APIG_VERSION_STRING);
}

static void test_options_init(void) {
  apig_options o;
  memset(&o, 0xff, sizeof o);
  apig_options_init(&o);
  CHECK(o.data_dir == NULL);
  CHECK(o.allocator == NULL);
  CHECK_INT(o.instance_count, 0);
  CHECK_INT(o.log_level, APIG_LOG_INFO);
}

static void test_open_close(void) {
  char *errmsg = (char *)1;
  CHECK(apig_open(NULL, &errmsg) == NULL);
  CHECK(errmsg != NULL);
  apig_string_free(errmsg);
  CHECK(apig_open(NULL, NULL) == NULL);

  const char *bad[] = {"no-colon"};
  apig_options o = base_options();
  o.instances = bad;
  errmsg = NULL;
  CHECK(apig_open(&o, &errmsg) == NULL);
  CHECK(errmsg && strstr(errmsg, "no-colon") != NULL);
  apig_string_free(errmsg);

  o = base_options();
  o.policy_file = "/nonexistent/policy.lua";
  errmsg = NULL;
  CHECK(apig_open(&o, &errmsg) == NULL);
  CHECK(errmsg && strstr(errmsg, "/nonexistent/policy.lua") != NULL);
  apig_string_free(errmsg);

  o = base_options();
  apig_t *apig = apig_open(&o, NULL);
  CHECK(apig != NULL);
  CHECK_INT(apig_close(apig), 0);
  CHECK_INT(apig_close(NULL), 0);
  apig_string_free(NULL);
}

static void test_request(void) {
  apig_options o = base_options();
  apig_t *apig = apig_open(&o, NULL);
  apig_response *response = (apig_response *)1;
  CHECK_INT(apig_request(NULL, "GET", "/healthz", NULL, 0, NULL, 0,
                         &response), -1);
  CHECK(response == NULL);
  CHECK_INT(apig_request(apig, NULL, "/healthz", NULL, 0, NULL, 0,
                         &response), -1);
  CHECK_INT(apig_request(apig, "GET", NULL, NULL, 0, NULL, 0, &response),
            -1);
  CHECK_INT(apig_request(apig, "GET", "/healthz", NULL, 0, NULL, 0, NULL),
            -1);
  CHECK_INT(apig_request(apig, "GET", "/healthz", NULL, 2, NULL, 0,
                         &response), -1);
  CHECK_INT(apig_request(apig, "POST", "/healthz", NULL, 0, NULL, 5,
                         &response), -1);

  CHECK_INT(apig_request(apig, "GET", "/healthz", NULL, 0, NULL, 0,
                         &response), 0);
  CHECK_INT(response->status, 200);
  CHECK(response->body[response->body_len] == '\0');
  int has_request_id = 0;
  for (size_t i = 0; i < response->header_count; i++)
    if (strcmp(response->headers[i].name, "X-Request-Id") == 0)
      has_request_id = response->headers[i].value_len == 32;
  CHECK(has_request_id);
  apig_response_free(response);
  apig_response_free(NULL);

  CHECK_INT(call(apig, "GET", BASE "/nothing-here", NULL, NULL), 404);
  CHECK_INT(call(apig, "GET", "/v2/p1/apigw/instances/other/envs", NULL,
                 NULL), 404);
  apig_close(apig);
}

static void test_snapshot(void) {
  CHECK_INT(apig_snapshot(NULL), -1);
  apig_options o = base_options();
  apig_t *memory = apig_open(&o, NULL);
  CHECK_INT(apig_snapshot(memory), -1);
  apig_close(memory);

  char *dir = make_temp_dir();
  o.data_dir = dir;
  apig_t *apig = apig_open(&o, NULL);
  CHECK(apig != NULL);
  CHECK_INT(apig_snapshot(apig), 0);
  apig_close(apig);
  remove_dir(dir);
  free(dir);
}

static void test_batch(void) {
  apig_options o = base_options();
  apig_t *apig = apig_open(&o, NULL);
  char ids[2][33];
  CHECK_INT(create_apis(apig, ids, 2), 0);
  const char *list[] = {ids[0], "0123456789abcdef0123456789abcdef", ids[1],
                        ids[0]};
  apig_batch_result *result = (apig_batch_result *)1;

  CHECK_INT(apig_publish(NULL, "p1", "i1", APIG_BATCH_ONLINE, list, 4,
                         RELEASE, NULL, &result), -1);
  CHECK(result == NULL);
  CHECK_INT(apig_publish(apig, NULL, "i1", APIG_BATCH_ONLINE, list, 4,
                         RELEASE, NULL, &result), -1);
  CHECK_INT(apig_publish(apig, "p1", NULL, APIG_BATCH_ONLINE, list, 4,
                         RELEASE, NULL, &result), -1);
  CHECK_INT(apig_publish(apig, "p1", "i1", APIG_BATCH_ONLINE, NULL, 4,
                         RELEASE, NULL, &result), -1);
  CHECK_INT(apig_publish(apig, "p1", "i1", (apig_batch_action)7, list, 4,
                         RELEASE, NULL, &result), -1);
  CHECK_INT(apig_publish(apig, "p1", "i1", APIG_BATCH_ONLINE, list, 4,
                         RELEASE, NULL, NULL), -1);
  CHECK_INT(apig_batch(apig, NULL, &result), -1);

  CHECK_INT(apig_publish(apig, "p1", "i1", APIG_BATCH_ONLINE, list, 4,
                         RELEASE, "first", &result), 0);
  CHECK_INT(result->status, 200);
  CHECK_INT(result->success_count, 2);
  CHECK_INT(result->failure_count, 1);
  CHECK(result->error_code == NULL);
  CHECK_STR(result->success[0].api_id, ids[0]);
  CHECK_STR(result->success[0].api_name, "api_0");
  CHECK_STR(result->success[0].env_id, RELEASE);
  CHECK_STR(result->success[0].remark, "first");
  CHECK_INT(strlen(result->success[0].version_id), 32);
  CHECK_INT(strlen(result->success[0].publish_id), 32);
  CHECK(result->success[0].publish_time != NULL);
  CHECK(result->success[0].error_code == NULL);
  CHECK_STR(result->success[1].api_id, ids[1]);
  CHECK_STR(result->failure[0].error_code, "APIG.3002");
  CHECK_STR(result->failure[0].error_msg,
            "Api 0123456789abcdef0123456789abcdef not found");
  CHECK(result->failure[0].api_name == NULL);
  CHECK_INT(strlen(result->request_id), 32);
  CHECK(strstr(result->body, "\"success\":[") == result->body + 1);
  CHECK_INT(strlen(result->body), result->body_len);
  char version[33];
  snprintf(version, sizeof version, "%s", result->success[0].version_id);
  apig_batch_result_free(result);
  apig_batch_result_free(NULL);

  CHECK_INT(apig_publish(apig, "p1", "i1", APIG_BATCH_OFFLINE, list, 1,
                         RELEASE, NULL, &result), 0);
  CHECK_INT(result->success_count, 1);
  CHECK_STR(result->success[0].version_id, version);
  CHECK(result->success[0].publish_id == NULL);
  apig_batch_result_free(result);

  /* A request-wide error is a result with the error, not a failure. */
  CHECK_INT(apig_publish(apig, "p1", "i1", APIG_BATCH_ONLINE, list, 1,
                         "missing-env", NULL, &result), 0);
  CHECK_INT(result->status, 404);
  CHECK_STR(result->error_code, "APIG.3003");
  CHECK_STR(result->error_msg, "Environment missing-env does not exist");
  CHECK_INT(result->success_count + result->failure_count, 0);
  apig_batch_result_free(result);

  CHECK_INT(apig_publish(apig, "p1", "i1", APIG_BATCH_ONLINE, list, 0,
                         RELEASE, NULL, &result), 0);
  CHECK_STR(result->error_code, "APIG.2001");
  apig_batch_result_free(result);

  /* group_id selects every API of the group. */
  apig_response *response = NULL;
  call(apig, "GET", BASE "/api-groups", NULL, &response);
  char group[33];
  json_string(response->body, "id", group, sizeof group);
  apig_response_free(response);
  apig_batch_request request = {.project_id = "p1",
                                .instance_id = "i1",
                                .action = APIG_BATCH_ONLINE,
                                .group_id = group,
                                .env_id = RELEASE,
                                .token = "dev"};
  CHECK_INT(apig_batch(apig, &request, &result), 0);
  CHECK_INT(result->success_count, 2);
  apig_batch_result_free(result);
  apig_close(apig);
}

/* ---- serving ---- */

typedef struct client {
  int port;
  char answer[4096];
  uv_async_t done;
} client;

/* Sends GET /healthz from another thread with plain sockets, then wakes
 * the loop. */
static void *client_main(void *arg) {
  client *c = arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)c->port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
    const char *request =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (write(fd, request, strlen(request)) > 0) {
      size_t len = 0;
      ssize_t n;
      while (len < sizeof c->answer - 1 &&
             (n = read(fd, c->answer + len, sizeof c->answer - 1 - len)) > 0)
        len += (size_t)n;
      c->answer[len] = '\0';
    }
  }
  close(fd);
  uv_async_send(&c->done);
  return NULL;
}

static apig_server *serving;
static int stopped_calls;

static void on_stopped(void *arg) { stopped_calls += arg == &serving; }

static void on_client_done(uv_async_t *async) {
  CHECK_INT(apig_serve_stop(serving, on_stopped, &serving), 0);
  CHECK_INT(apig_serve_stop(serving, on_stopped, &serving), -1);
  uv_close((uv_handle_t *)async, NULL);
}

static void test_serve(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  apig_options o = base_options();
  apig_t *apig = apig_open(&o, NULL);
  apig_server *server = (apig_server *)1;
  char *errmsg = NULL;

  CHECK_INT(apig_serve(NULL, &loop, "127.0.0.1:0", NULL, &server, &errmsg),
            -1);
  CHECK(server == NULL);
  CHECK(errmsg && strstr(errmsg, "apig") != NULL);
  apig_string_free(errmsg);
  CHECK_INT(apig_serve(apig, NULL, "127.0.0.1:0", NULL, &server, NULL), -1);
  CHECK_INT(apig_serve(apig, &loop, NULL, NULL, &server, NULL), -1);
  CHECK_INT(apig_serve(apig, &loop, "127.0.0.1:0", NULL, NULL, NULL), -1);
  CHECK_INT(apig_serve(apig, &loop, "nowhere", NULL, &server, &errmsg), -1);
  CHECK(errmsg && strstr(errmsg, "nowhere") != NULL);
  apig_string_free(errmsg);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_INT(apig_server_port(NULL), -1);
  CHECK_INT(apig_serve_stop(NULL, NULL, NULL), -1);

  apig_serve_options opts;
  apig_serve_options_init(&opts);
  opts.max_connections = 4;
  CHECK_INT(apig_serve(apig, &loop, "127.0.0.1:0", &opts, &serving,
                       &errmsg), 0);
  CHECK(serving != NULL);
  CHECK(apig_server_port(serving) > 0);
  apig_server *second = NULL;
  CHECK_INT(apig_serve(apig, &loop, "127.0.0.1:0", NULL, &second, &errmsg),
            -1);
  CHECK(errmsg && strstr(errmsg, "serving already") != NULL);
  apig_string_free(errmsg);
  CHECK_INT(apig_close(apig), -1); /* still serving: not freed */
  apig_response *response = (apig_response *)1;
  CHECK_INT(apig_request(apig, "GET", "/healthz", NULL, 0, NULL, 0,
                         &response), -1);
  CHECK(response == NULL);

  client c = {.port = apig_server_port(serving)};
  uv_async_init(&loop, &c.done, on_client_done);
  pthread_t thread;
  pthread_create(&thread, NULL, client_main, &c);
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_join(thread, NULL);
  CHECK(strncmp(c.answer, "HTTP/1.1 200", 12) == 0);
  CHECK(strstr(c.answer, "\"ok\"") != NULL);
  CHECK_INT(stopped_calls, 1);
  CHECK_INT(apig_close(apig), 0);
  CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_errors(void) {
  CHECK_STR(apig_error_code(APIG_E_BATCH_API_NOT_FOUND), "APIG.3002");
  CHECK_INT(apig_error_status(APIG_E_BATCH_API_NOT_FOUND), 404);
  CHECK_STR(apig_error_template(APIG_E_BATCH_API_NOT_FOUND),
            "Api %s not found");
  CHECK_STR(apig_error_code((apig_error)-1), "APIG.9999");
  CHECK_INT(apig_error_status(APIG_E__COUNT), 500);
}

/* ---- allocation failures ---- */

static const char policy_text[] =
    "local policy = {}\n"
    "function policy.rewrite_remark(remark, api, env, ctx)\n"
    "  return (remark or '') .. ' by policy'\n"
    "end\n"
    "return policy\n";

/* Makes each allocation of apig_open fail in turn, with a data folder and
 * a policy: every failed open returns NULL and frees all it took. */
static void test_open_allocation_failures(void) {
  char *policy_dir = make_temp_dir();
  char policy_path[256];
  snprintf(policy_path, sizeof policy_path, "%s/policy.lua", policy_dir);
  write_file(policy_path, policy_text);
  long failures = 0;
  for (long n = 1;; n++) {
    char *dir = make_temp_dir();
    counting c = {.fail_at = n};
    apig_allocator allocator = {counting_realloc, &c};
    apig_options o = base_options();
    o.data_dir = dir;
    o.policy_file = policy_path;
    o.allocator = &allocator;
    char *errmsg = NULL;
    apig_t *apig = apig_open(&o, &errmsg);
    apig_string_free(errmsg);
    if (c.failed && apig)
      CHECK_INT(published_count(apig), 0); /* a failure it recovered from */
    apig_close(apig);
    if (c.live != 0)
      fprintf(stderr, "apig_open failing allocation %ld: %ld blocks leak\n",
              n, c.live);
    CHECK_INT(c.live, 0);
    remove_dir(dir);
    free(dir);
    if (!c.failed)
      break;
    failures++;
  }
  printf("apig_open: %ld allocation failures injected\n", failures);
  CHECK(failures > 10);
  remove_dir(policy_dir);
  free(policy_dir);
}

/* Makes each allocation of one batch request fail in turn. The batch is
 * applied whole or not at all, in memory and, after a reopen, on disk. */
static void test_batch_allocation_failures(void) {
  long failures = 0, applied = 0, misreported = 0;
  for (long n = 1;; n++) {
    char *dir = make_temp_dir();
    counting c = {0};
    apig_allocator allocator = {counting_realloc, &c};
    apig_options o = base_options();
    o.data_dir = dir;
    o.allocator = &allocator;
    apig_t *apig = apig_open(&o, NULL);
    char ids[3][33];
    CHECK_INT(create_apis(apig, ids, 3), 0);
    char body[256];
    snprintf(body, sizeof body,
             "{\"apis\":[\"%s\",\"%s\",\"%s\",\"unknown\"],\"env_id\":\"%s\","
             "\"remark\":\"r\"}",
             ids[0], ids[1], ids[2], RELEASE);

    c.fail_at = c.calls + n;
    apig_response *response = NULL;
    apig_header token = {"X-Auth-Token", 12, "dev", 3};
    int rc = apig_request(apig, "POST", BASE "/apis/publish?action=online",
                          &token, 1, body, strlen(body), &response);
    c.fail_at = 0;
    int status = rc == 0 ? response->status : -1;
    int successes = -1;
    if (status == 200) {
      successes = 0;
      for (int i = 0; i < 3; i++)
        successes += strstr(strstr(response->body, "\"success\""),
                            ids[i]) < strstr(response->body, "\"failure\"");
    }
    /* Running out of memory anywhere, routing and JSON parsing included,
     * is a server error: 500, never a client error. */
    if (rc == 0 && status != 200 && status != 500) {
      misreported++;
      CHECK_INT(status, 500);
    }
    apig_response_free(response);

    /* Whatever the answer, the state holds all of the batch's successes
     * or none of them. */
    int published = published_count(apig);
    if (status == 200)
      CHECK_INT(published, successes);
    else if (status != -1)
      CHECK_INT(published, 0);
    applied += published > 0;
    apig_close(apig);
    CHECK_INT(c.live, 0);

    apig = apig_open(&o, NULL);
    CHECK_INT(published_count(apig), published);
    apig_close(apig);
    CHECK_INT(c.live, 0);
    remove_dir(dir);
    free(dir);
    if (!c.failed)
      break;
    failures++;
  }
  printf("batch request: %ld allocation failures injected, %ld applied "
         "whole, %ld answered as a client error\n",
         failures, applied, misreported);
  CHECK(failures > 10);
}

int main(void) {
  test_version();
  test_options_init();
  test_open_close();
  test_request();
  test_snapshot();
  test_batch();
  test_serve();
  test_errors();
  test_open_allocation_failures();
  test_batch_allocation_failures();
  return test_report("test_api");
}
