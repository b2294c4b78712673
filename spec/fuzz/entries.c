/* Fuzz entry points over the real request, signature, import and load
 * paths. Each keeps its fixture in statics made on first use, so the
 * libFuzzer targets and the replay test share one implementation. */
#include "entries.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "apig.h"
#include "auth.h"
#include "http.h"
#include "import.h"
#include "json.h"

#define INSTANCE "p1:i1"
#define BASE "/v2/p1/apigw/instances/i1"
#define FIXTURE_APIS 10
/* A request or connection that takes longer than this is a hang. */
#define DEADLINE_MS 10000

/* Stops the process with a message: the fuzzer reports it as a crash. */
static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz invariant broken: %s: %s\n", what,
          detail ? detail : "");
  abort();
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Fixture: an in-memory handle with an environment and APIs -------- */

typedef struct fixture {
  apig_t *apig;
  char env_id[33];
  char group_id[33];
  char api_ids[FIXTURE_APIS][33];
} fixture;

static const apig_header token_header = {"X-Auth-Token", 12, "fuzz", 4};

/* Runs one in-process request; returns its status and, when id_out is not
 * NULL, the "id" of the created object. */
static int call(apig_t *apig, const char *method, const char *target,
                const char *body, char id_out[33]) {
  apig_response *response = NULL;
  if (apig_request(apig, method, target, &token_header, 1, body,
                   body ? strlen(body) : 0, &response) != 0)
    fail("apig_request returned no response", target);
  int status = response->status;
  if (id_out) {
    cJSON *tree = cJSON_Parse(response->body);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(tree, "id"));
    if (!id || strlen(id) != 32)
      fail("fixture object without id", response->body);
    memcpy(id_out, id, 33);
    cJSON_Delete(tree);
  }
  apig_response_free(response);
  return status;
}

static void fixture_open(fixture *f, const char *data_dir) {
  static const char *instances[] = {INSTANCE};
  apig_options options;
  char *errmsg = NULL;
  char body[256];

  apig_options_init(&options);
  options.data_dir = data_dir;
  options.instances = instances;
  options.instance_count = 1;
  options.fsync_mode = APIG_FSYNC_OFF;
  f->apig = apig_open(&options, &errmsg);
  if (!f->apig)
    fail("apig_open", errmsg);
  call(f->apig, "POST", BASE "/envs", "{\"name\":\"TEST\"}", f->env_id);
  call(f->apig, "POST", BASE "/api-groups", "{\"name\":\"fuzz\"}",
       f->group_id);
  for (int i = 0; i < FIXTURE_APIS; i++) {
    snprintf(body, sizeof body,
             "{\"group_id\":\"%s\",\"name\":\"fuzz_api%d\",\"type\":1,"
             "\"req_protocol\":\"HTTPS\",\"req_method\":\"GET\","
             "\"req_uri\":\"/fuzz%d\",\"auth_type\":\"NONE\","
             "\"backend_type\":\"MOCK\",\"mock_info\":"
             "{\"result_content\":\"ok\"}}",
             f->group_id, i, i);
    call(f->apig, "POST", BASE "/apis", body, f->api_ids[i]);
  }
}

/* Checks that an answer body is empty or one strict JSON value. */
static void check_json_body(const apig_response *response, const char *what) {
  char err[256];
  if (response->body_len == 0)
    return;
  cJSON *tree = apig_json_parse(response->body, response->body_len, err,
                                sizeof err);
  if (!tree)
    fail(what, err);
  cJSON_Delete(tree);
}

/* ---- HTTP: bytes through a real server on loopback --------------------- */

static struct {
  uv_loop_t loop;
  fixture fix;
  apig_http_server *server;
  int port;
  int ready;
} http;

static void http_init(void) {
  apig_http_limits limits;
  char *errmsg = NULL;

  uv_loop_init(&http.loop);
  fixture_open(&http.fix, NULL);
  apig_http_limits_init(&limits);
  limits.request_timeout_ms = 2000;
  limits.idle_timeout_ms = 2000;
  if (apig_http_start(http.fix.apig, &http.loop, "127.0.0.1:0", &limits,
                      &http.server, &errmsg) != 0)
    fail("apig_http_start", errmsg);
  http.port = apig_http_port(http.server);
  http.ready = 1;
}

static int http_connect(void) {
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)http.port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0)
    fail("socket", strerror(errno));
  /* Non-blocking, so that the fuzzer's timer signal cannot interrupt it:
   * the connection completes while the loop runs. */
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 &&
      errno != EINPROGRESS)
    fail("connect", strerror(errno));
  return fd;
}

/* Runs the server's loop until fd is readable or a short time passes. */
static void http_step(int fd, short events) {
  struct pollfd fds[2] = {{fd, events, 0},
                          {uv_backend_fd(&http.loop), POLLIN, 0}};
  uv_run(&http.loop, UV_RUN_NOWAIT);
  poll(fds, 2, 5);
  uv_run(&http.loop, UV_RUN_NOWAIT);
}

/* Sends everything, running the loop whenever the socket is full. */
static void http_send(int fd, const uint8_t *data, size_t size,
                      uint64_t deadline) {
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
               errno != EINTR && errno != ENOTCONN) {
      return; /* the server closed early, as it may on bad input */
    } else {
      if (now_ms() > deadline)
        fail("send", "the server stopped reading");
      http_step(fd, POLLOUT);
    }
  }
}

/* Reads until the server closes the connection; returns the byte count
 * and keeps the first bytes in head. */
static size_t http_receive(int fd, char *head, size_t head_size,
                           uint64_t deadline) {
  size_t total = 0;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return total;
    if (n > 0) {
      if (total < head_size)
        memcpy(head + total, buf,
               (size_t)n < head_size - total ? (size_t)n : head_size - total);
      total += (size_t)n;
      continue;
    }
    if (now_ms() > deadline)
      fail("receive", "the server did not close the connection");
    http_step(fd, POLLIN);
  }
}

int fuzz_http_one(const uint8_t *data, size_t size) {
  if (!http.ready)
    http_init();
  uint64_t deadline = now_ms() + DEADLINE_MS;
  int fd = http_connect();
  char head[16] = "";

  /* Let the server accept first, so its connection limit applies. */
  http_step(fd, POLLOUT);
  http_send(fd, data, size, deadline);
  shutdown(fd, SHUT_WR);
  size_t got = http_receive(fd, head, sizeof head, deadline);
  close(fd);
  if (got > 0 && (got < 9 || memcmp(head, "HTTP/1.1 ", 9) != 0))
    fail("response", "output does not start with a status line");
  while (apig_http_connection_count(http.server) > 0) {
    if (now_ms() > deadline)
      fail("connection", "not closed after the client left");
    http_step(-1, 0);
  }
  return 0;
}

/* ---- Batch body through apig_request ----------------------------------- */

static fixture batch_fix;

/* Replaces "$0".."$9" with API ids, "$E" with the environment id and "$G"
 * with the group id. */
static char *expand_ids(const fixture *f, const uint8_t *data, size_t size,
                        size_t *out_len) {
  char *out = malloc(size * 16 + 1);
  size_t len = 0;
  for (size_t i = 0; i < size; i++) {
    const char *id = NULL;
    if (data[i] == '$' && i + 1 < size) {
      uint8_t c = data[i + 1];
      if (c >= '0' && c <= '9')
        id = f->api_ids[c - '0'];
      else if (c == 'E')
        id = f->env_id;
      else if (c == 'G')
        id = f->group_id;
    }
    if (id) {
      memcpy(out + len, id, 32);
      len += 32;
      i++;
    } else {
      out[len++] = (char)data[i];
    }
  }
  out[len] = '\0';
  *out_len = len;
  return out;
}

/* A strictly parsed value printed by cJSON must parse again. */
static void check_json_round_trip(const char *text, size_t len) {
  char err[256];
  cJSON *tree = apig_json_parse(text, len, err, sizeof err);
  if (!tree)
    return;
  char *printed = cJSON_PrintUnformatted(tree);
  cJSON_Delete(tree);
  if (!printed)
    return;
  cJSON *again = apig_json_parse(printed, strlen(printed), err, sizeof err);
  if (!again)
    fail("printed JSON does not parse again", err);
  cJSON_Delete(again);
  cJSON_free(printed);
}

int fuzz_batch_one(const uint8_t *data, size_t size) {
  static const char *queries[] = {
      "?action=online", "?action=offline", "?action=online&action=offline",
      "", "?action=onl%69ne", "?action=online&x=1"};
  if (!batch_fix.apig)
    fixture_open(&batch_fix, NULL);
  if (size == 0)
    return 0;

  size_t body_len;
  char *body = expand_ids(&batch_fix, data + 1, size - 1, &body_len);
  char target[128];
  snprintf(target, sizeof target, BASE "/apis/publish%s",
           queries[data[0] % (sizeof queries / sizeof queries[0])]);
  check_json_round_trip(body, body_len);

  apig_response *response = NULL;
  if (apig_request(batch_fix.apig, "POST", target, &token_header, 1, body,
                   body_len, &response) != 0)
    fail("apig_request", "no response");
  if (response->status >= 500)
    fail("batch answered a server error", response->body);
  check_json_body(response, "batch answer is not JSON");
  apig_response_free(response);
  free(body);
  return 0;
}

/* ---- Authentication and signing ---------------------------------------- */

#define FUZZ_AK "AccessKey"
#define FUZZ_SK "SecretKey"
#define FUZZ_DATE "20200608T023900Z"
#define FUZZ_NOW_NS (1591583940LL * 1000000000LL)
#define MAX_FUZZ_HEADERS 32

static apig_credentials *credentials;

static void auth_init(void) {
  char path[] = "/tmp/apig-fuzz-credentials-XXXXXX";
  static const char text[] =
      "{\"tokens\":[{\"name\":\"fuzz-token\",\"token\":\"good\","
      "\"project_id\":\"p1\",\"permissions\":[\"read\",\"publish\","
      "\"offline\",\"manage\"]}],"
      "\"access_keys\":[{\"name\":\"fuzz-key\",\"ak\":\"" FUZZ_AK "\","
      "\"sk\":\"" FUZZ_SK "\",\"project_id\":\"p1\",\"permissions\":"
      "[\"read\",\"publish\",\"offline\",\"manage\"]}]}";
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, text, sizeof text - 1) != sizeof text - 1)
    fail("writing the credentials file", strerror(errno));
  close(fd);
  char *errmsg = NULL;
  credentials = apig_credentials_load(path, NULL, &errmsg);
  unlink(path);
  if (!credentials)
    fail("apig_credentials_load", errmsg);
}

/* Takes the next '\n'-terminated line of the input. */
static const char *next_line(const char **cursor, const char *end,
                             size_t *len) {
  const char *start = *cursor;
  const char *nl = memchr(start, '\n', (size_t)(end - start));
  const char *stop = nl ? nl : end;
  *len = (size_t)(stop - start);
  *cursor = nl ? nl + 1 : end;
  return start;
}

static int is_auth_header(const apig_header *h) {
  static const char *const names[] = {"authorization", "x-sdk-date",
                                      "x-auth-token", "x-project-id",
                                      "x-sdk-content-sha256"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (h->name_len == strlen(names[i]) &&
        strncasecmp(h->name, names[i], h->name_len) == 0)
      return 1;
  return 0;
}

/* Signs the request with the fuzz key and checks that apig_authenticate
 * accepts what apig_sign produced. */
static void check_signed_request(apig_auth_request *request,
                                 apig_header *headers, size_t count) {
  size_t kept = 0;
  for (size_t i = 0; i < count; i++)
    if (!is_auth_header(&headers[i]))
      headers[kept++] = headers[i];
  headers[kept++] = (apig_header){"X-Sdk-Date", 10, FUZZ_DATE, 16};

  char signature[65];
  if (apig_sign(FUZZ_SK, request->method, request->raw_path,
                request->raw_path_len, request->raw_query,
                request->raw_query_len, headers, kept, "x-sdk-date",
                FUZZ_DATE, request->body, request->body_len, NULL,
                signature) != 0)
    return;
  char value[160];
  snprintf(value, sizeof value,
           "SDK-HMAC-SHA256 Access=" FUZZ_AK
           ", SignedHeaders=x-sdk-date, Signature=%s",
           signature);
  headers[kept++] = (apig_header){"Authorization", 13, value, strlen(value)};
  request->headers = headers;
  request->header_count = kept;
  char caller[64];
  apig_error error = apig_authenticate(credentials, request, caller,
                                      sizeof caller);
  if (error != APIG_E_OK)
    fail("a request signed by apig_sign was rejected",
         apig_error_code(error));
}

int fuzz_auth_one(const uint8_t *data, size_t size) {
  if (!credentials)
    auth_init();
  /* Copied so that every field ends inside its own allocation. */
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  const char *cursor = text, *end = text + size;
  size_t method_len, path_len, query_len, len;
  const char *method = next_line(&cursor, end, &method_len);
  const char *path = next_line(&cursor, end, &path_len);
  const char *query = next_line(&cursor, end, &query_len);

  apig_header headers[MAX_FUZZ_HEADERS + 2];
  size_t count = 0;
  while (cursor < end && count < MAX_FUZZ_HEADERS) {
    const char *line = next_line(&cursor, end, &len);
    if (len == 0)
      break;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    headers[count++] = (apig_header){line, name_len, value,
                                     (size_t)(line + len - value)};
  }
  char *method_copy = strndup(method, method_len);
  apig_auth_request request = {
      .method = method_copy,
      .raw_path = path, .raw_path_len = path_len,
      .raw_query = query, .raw_query_len = query_len,
      .headers = headers, .header_count = count,
      .body = cursor, .body_len = (size_t)(end - cursor),
      .project_id = "p1", .permission = APIG_PERM_READ,
      .now_ns = FUZZ_NOW_NS};
  char caller[64];
  apig_error error = apig_authenticate(credentials, &request, caller,
                                      sizeof caller);
  if (!apig_error_code(error))
    fail("apig_authenticate", "returned an unknown error");
  apig_authenticate(NULL, &request, caller, sizeof caller);
  check_signed_request(&request, headers, count);
  free(method_copy);
  free(text);
  return 0;
}

/* ---- OpenAPI import ---------------------------------------------------- */

static fixture import_fix;
static unsigned import_runs;

int fuzz_openapi_one(const uint8_t *data, size_t size) {
  char err[512];
  /* Every group made by an import stays; a fresh handle now and then keeps
   * the store small. */
  if (import_fix.apig && ++import_runs % 500 == 0) {
    apig_close(import_fix.apig);
    import_fix.apig = NULL;
  }
  if (!import_fix.apig)
    fixture_open(&import_fix, NULL);

  cJSON *doc = apig_openapi_parse((const char *)data, size, err, sizeof err);
  cJSON_Delete(doc);

  apig_response *response = NULL;
  if (apig_request(import_fix.apig, "POST",
                   BASE "/openapi/import?is_create_group=true",
                   &token_header, 1, (const char *)data, size,
                   &response) != 0)
    fail("apig_request", "no response");
  if (response->status >= 500)
    fail("import answered a server error", response->body);
  check_json_body(response, "import answer is not JSON");
  apig_response_free(response);
  return 0;
}

/* ---- Snapshot and journal loaders -------------------------------------- */

static char load_dir[512];

static void clear_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *entry;
  char path[1024];
  while ((entry = readdir(d))) {
    if (entry->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
    unlink(path);
  }
  closedir(d);
}

static apig_t *open_dir(char **errmsg) {
  apig_options options;
  apig_options_init(&options);
  options.data_dir = load_dir;
  options.fsync_mode = APIG_FSYNC_OFF;
  return apig_open(&options, errmsg);
}

/* Loads name = data from a fresh folder. A state that loads must also
 * survive its own final snapshot: closing and opening again works. */
/* Removes the scratch folder when the process exits. */
static void remove_load_dir(void) {
  clear_dir(load_dir);
  rmdir(load_dir);
}

static int load_one(const char *name, const uint8_t *data, size_t size) {
  if (!load_dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(load_dir, sizeof load_dir, "%s/apig-fuzz-load-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(load_dir))
      fail("mkdtemp", strerror(errno));
    atexit(remove_load_dir);
  }
  clear_dir(load_dir);
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", load_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size)
    fail("writing the input file", strerror(errno));
  fclose(f);

  char *errmsg = NULL;
  apig_t *apig = open_dir(&errmsg);
  apig_string_free(errmsg);
  if (!apig)
    return 0;
  apig_close(apig);
  errmsg = NULL;
  apig = open_dir(&errmsg);
  if (!apig)
    fail("the snapshot written on close does not load", errmsg);
  apig_close(apig);
  return 0;
}

/* The seed files come from a server that wrote records 1 to 8 to its
 * first journal, then a snapshot of record 8 when it stopped. */
int fuzz_snapshot_one(const uint8_t *data, size_t size) {
  return load_one("snapshot-0000000000000008.apig", data, size);
}

int fuzz_journal_one(const uint8_t *data, size_t size) {
  return load_one("journal-0000000000000001.apig", data, size);
}
