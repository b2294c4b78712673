/* HTTP server over loopback sockets: framing, limits, keep-alive, timeouts.
 *
 * The servers run on a libuv loop in a second thread and respond through the
 * real library; the test talks to them with blocking sockets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"
#include "http.h"
#include "testlib.h"

#define PUBLISH_PATH "/v2/p1/apigw/instances/i1/apis/publish"
#define SECRET_TOKEN "secret-token-value"

static uv_loop_t loop;
static uv_async_t stop_async;
static apig_t *apig;
static apig_http_server *main_server; /* default limits */
static apig_http_server *slow_server; /* 300 ms request and idle timeouts */
static apig_http_server *small_server; /* at most one connection */
static apig_http_server *v6_server;    /* on [::1], when available */
static int main_port, slow_port, small_port;
static int stopped_servers;
static atomic_int secret_logged;

/* ---- Server side, on the loop thread ----------------------------------- */

static void on_log(void *ud, const apig_log_event *event) {
  if (strstr(event->message, SECRET_TOKEN))
    atomic_store(&secret_logged, 1);
}

static void on_server_stopped(void *arg) { (*(int *)arg)++; }

static void on_stop_request(uv_async_t *async) {
  apig_http_stop(main_server, on_server_stopped, &stopped_servers);
  apig_http_stop(slow_server, on_server_stopped, &stopped_servers);
  apig_http_stop(small_server, on_server_stopped, &stopped_servers);
  if (v6_server)
    apig_http_stop(v6_server, on_server_stopped, &stopped_servers);
  uv_close((uv_handle_t *)async, NULL);
}

static void *run_loop(void *arg) {
  uv_run(&loop, UV_RUN_DEFAULT);
  return NULL;
}

static apig_http_server *start_server(const apig_http_limits *limits,
                                      int *port) {
  apig_http_server *server = NULL;
  char *errmsg = NULL;
  int rc = apig_http_start(apig, &loop, "127.0.0.1:0", limits, &server,
                           &errmsg);
  CHECK_INT(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "start failed: %s\n", errmsg ? errmsg : "?");
    exit(1);
  }
  *port = apig_http_port(server);
  CHECK(*port > 0);
  return server;
}

/* ---- Client side --------------------------------------------------------- */

typedef struct client {
  int fd;
  char *buf;
  size_t len, cap;
} client;

typedef struct response {
  int status;
  char head[16384];
  char *body;
  size_t body_len;
} response;

/* Connects to the loopback address; rcvbuf > 0 shrinks the receive buffer
 * so that the server has to queue its output. */
static int connect_to(int family, int port, int rcvbuf) {
  int fd = socket(family, SOCK_STREAM, 0);
  struct timeval timeout = {5, 0};
  int enable = 1;

  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof enable);
  if (family == AF_INET6) {
    struct sockaddr_in6 addr = {.sin6_family = AF_INET6,
                                .sin6_port = htons((uint16_t)port)};
    addr.sin6_addr = in6addr_loopback;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
      return -1;
  } else {
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
      return -1;
  }
  return fd;
}

static client *client_open_with(int port, int rcvbuf) {
  client *c = calloc(1, sizeof *c);
  c->cap = 1 << 20;
  c->buf = malloc(c->cap);
  c->fd = connect_to(AF_INET, port, rcvbuf);
  if (c->fd < 0) {
    perror("connect");
    exit(1);
  }
  return c;
}

static client *client_open(int port) { return client_open_with(port, 0); }

static void client_close(client *c) {
  close(c->fd);
  free(c->buf);
  free(c);
}

/* Sends everything; errors are ignored because a server may close early. */
static void client_send(client *c, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    data += n;
    len -= (size_t)n;
  }
}

static void client_send_str(client *c, const char *s) {
  client_send(c, s, strlen(s));
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Reads more bytes; returns the count, 0 at EOF, -1 on error or timeout. */
static ssize_t client_fill(client *c) {
  if (c->len == c->cap) {
    c->cap *= 2;
    c->buf = realloc(c->buf, c->cap);
  }
  ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
  if (n > 0)
    c->len += (size_t)n;
  return n;
}

static const char *find_bytes(const char *hay, size_t len, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(hay + i, s, n) == 0)
      return hay + i;
  return NULL;
}

/* Copies the value of header `name` of r into out; returns 0 if found. */
static int header_value(const response *r, const char *name, char *out,
                        size_t size) {
  size_t n = strlen(name);
  const char *line = strstr(r->head, "\r\n");
  while (line && line[2] != '\r' && line[2] != '\0') {
    line += 2;
    const char *end = strstr(line, "\r\n");
    if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
      const char *value = line + n + 1;
      while (*value == ' ')
        value++;
      snprintf(out, size, "%.*s", (int)(end - value), value);
      return 0;
    }
    line = end;
  }
  return -1;
}

static void response_free(response *r) {
  free(r->body);
  r->body = NULL;
}

/* Reads one response; returns 0, or -1 when the connection ended first. */
static int read_response(client *c, response *r) {
  const char *end;
  char value[64];

  memset(r, 0, sizeof *r);
  while (!(end = find_bytes(c->buf, c->len, "\r\n\r\n")))
    if (client_fill(c) <= 0)
      return -1;
  size_t head_len = (size_t)(end - c->buf) + 4;
  if (head_len >= sizeof r->head)
    return -1;
  memcpy(r->head, c->buf, head_len);
  r->head[head_len] = '\0';
  if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
    return -1;

  size_t body_len = 0;
  if (header_value(r, "Content-Length", value, sizeof value) == 0)
    body_len = strtoul(value, NULL, 10);
  while (c->len < head_len + body_len)
    if (client_fill(c) <= 0)
      return -1;
  r->body = malloc(body_len + 1);
  memcpy(r->body, c->buf + head_len, body_len);
  r->body[body_len] = '\0';
  r->body_len = body_len;
  c->len -= head_len + body_len;
  memmove(c->buf, c->buf + head_len + body_len, c->len);
  return 0;
}

/* Waits for the server to close; returns 1 on EOF or reset, 0 on timeout.
 * Bytes that arrive first stay in c->buf. */
static int wait_closed(client *c) {
  for (;;) {
    ssize_t n = client_fill(c);
    if (n == 0)
      return 1;
    if (n < 0)
      return errno == ECONNRESET || errno == EPIPE;
  }
}

static int status_of(int port, const char *request) {
  client *c = client_open(port);
  response r;
  client_send_str(c, request);
  int status = read_response(c, &r) == 0 ? r.status : -1;
  response_free(&r);
  client_close(c);
  return status;
}

/* Checks that request gets exactly one response `status` carrying `code` in
 * its body and "Connection: close", and that the connection then closes. */
static void check_rejected(client *c, int status, const char *code) {
  response r;
  char value[64] = "";

  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, status);
  CHECK(r.body != NULL);
  CHECK(r.body && strstr(r.body, code) != NULL);
  header_value(&r, "Connection", value, sizeof value);
  CHECK_STR(value, "close");
  CHECK_INT(wait_closed(c), 1);
  CHECK_INT(c->len, 0);
  response_free(&r);
}

/* -------------------------------------------------------------------------- */

static void test_healthz_keeps_alive(void) {
  client *c = client_open(main_port);
  response r;
  char value[64];

  for (int i = 0; i < 2; i++) {
    client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK_INT(read_response(c, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_INT(header_value(&r, "Connection", value, sizeof value), 0);
    CHECK_STR(value, "keep-alive");
    CHECK_INT(header_value(&r, "X-Request-Id", value, sizeof value), 0);
    CHECK_INT(strlen(value), 32);
    response_free(&r);
  }
  client_close(c);
}

static void test_unknown_path_404(void) {
  client *c = client_open(main_port);
  response r;
  char value[64];

  client_send_str(c, "GET /no/such/path HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 404);
  CHECK(strstr(r.body, "APIG.2012") != NULL);
  CHECK_INT(header_value(&r, "Content-Length", value, sizeof value), 0);
  CHECK_INT(strtoul(value, NULL, 10), r.body_len);
  response_free(&r);
  client_close(c);
}

static void test_pipelined_in_order(void) {
  client *c = client_open(main_port);
  response first, second, third;

  client_send_str(c, "GET /first-path HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /second-path HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(read_response(c, &first), 0);
  CHECK_INT(read_response(c, &second), 0);
  CHECK_INT(read_response(c, &third), 0);
  CHECK_INT(first.status, 404);
  CHECK_INT(second.status, 200);
  CHECK_INT(third.status, 404);
  CHECK(strstr(first.body, "/first-path") != NULL);
  CHECK(strstr(third.body, "/second-path") != NULL);
  CHECK(strstr(third.body, "/first-path") == NULL);
  response_free(&first);
  response_free(&second);
  response_free(&third);
  client_close(c);
}

static const char three_requests[] =
    "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    "GET /byte-path HTTP/1.1\r\nHost: t\r\n\r\n"
    "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

static void test_one_byte_at_a_time(void) {
  client *whole = client_open(main_port);
  client *bytes = client_open(main_port);
  response a, b;

  client_send_str(whole, three_requests);
  for (size_t i = 0; i < sizeof three_requests - 1; i++) {
    client_send(bytes, three_requests + i, 1);
    sleep_ms(1);
  }
  for (int i = 0; i < 3; i++) {
    CHECK_INT(read_response(whole, &a), 0);
    CHECK_INT(read_response(bytes, &b), 0);
    CHECK_INT(b.status, a.status);
    CHECK_STR(b.body, a.body);
    response_free(&a);
    response_free(&b);
  }
  CHECK_INT(wait_closed(bytes), 1);
  client_close(whole);
  client_close(bytes);
}

static void test_split_inside_fields(void) {
  static const char *pieces[] = {
      "POST /split-path HTTP/1.1\r\nHo", "st: t\r\nX-Lon", "g-Name: val",
      "ue-part\r\nContent-Le", "ngth: 1", "3\r\n\r\n{\"a\":\"bcd",
      "ef\"}GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"};
  client *c = client_open(main_port);
  response r;

  for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
    client_send_str(c, pieces[i]);
    sleep_ms(20);
  }
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 404);
  CHECK(strstr(r.body, "/split-path") != NULL);
  response_free(&r);
  /* The body was read exactly: the next request is parsed cleanly. */
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 200);
  response_free(&r);
  client_close(c);
}

static void test_chunked_extension_trailer(void) {
  client *c = client_open(main_port);
  response r;

  client_send_str(c, "POST /chunked-path HTTP/1.1\r\nHost: t\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"
                     "4;name=value\r\n{\"a\"\r\n");
  sleep_ms(20);
  client_send_str(c, "4\r\n:\"\xe5\x8f\r\n");
  sleep_ms(20);
  client_send_str(c, "6\r\n\x91\xe5\xb8\x83\"}\r\n0\r\nX-Trailer: 1\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 404);
  response_free(&r);
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 200);
  response_free(&r);
  client_close(c);
}

/* Chunk borders inside a JSON string and inside the UTF-8 bytes of the
 * remark: the stored remark is exactly the one sent. */
static void test_chunked_body_reaches_handler(void) {
  static const char *chunks[] = {"{\"name\":\"TE", "ST\",\"remark\":\"\xe5",
                                 "\x8f\x91\xe5\xb8", "\x83\"}"};
  client *c = client_open(main_port);
  response r;
  char size[32];

  client_send_str(c, "POST /v2/p1/apigw/instances/i1/envs HTTP/1.1\r\n"
                     "Host: t\r\nX-Auth-Token: good\r\n"
                     "Content-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    snprintf(size, sizeof size, "%zx\r\n", strlen(chunks[i]));
    client_send_str(c, size);
    client_send_str(c, chunks[i]);
    client_send_str(c, "\r\n");
    sleep_ms(10);
  }
  client_send_str(c, "0\r\n\r\n");
  CHECK_INT(read_response(c, &r), 0);
  CHECK(r.status == 200 || r.status == 201);
  CHECK(r.body != NULL);
  CHECK(r.body &&
        strstr(r.body, "\"remark\":\"\xe5\x8f\x91\xe5\xb8\x83\"") != NULL);
  response_free(&r);
  client_close(c);
}

static void test_many_header_lines_431(void) {
  client *c = client_open(main_port);
  char line[64];

  client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
  for (int i = 0; i < 20000; i++) {
    snprintf(line, sizeof line, "X-Header-%d: v\r\n", i);
    client_send_str(c, line);
  }
  client_send_str(c, "\r\n");
  check_rejected(c, 431, "16384");
  client_close(c);
}

static void test_large_header_431(void) {
  client *c = client_open(main_port);
  size_t size = 200 * 1024;
  char *token = malloc(size + 1);

  for (size_t i = 0; i < size; i++)
    token[i] = SECRET_TOKEN[i % (sizeof SECRET_TOKEN - 1)];
  token[size] = '\0';
  client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Auth-Token: ");
  client_send_str(c, token);
  client_send_str(c, "\r\n\r\n");
  check_rejected(c, 431, "APIG.2000");
  client_close(c);
  free(token);
  CHECK_INT(atomic_load(&secret_logged), 0);
}

static void test_body_too_large_413(void) {
  char limit[32], expected[64];
  snprintf(limit, sizeof limit, "%zu",
           apig_body_limit(apig, PUBLISH_PATH, strlen(PUBLISH_PATH)));
  snprintf(expected, sizeof expected, "limit of %s bytes", limit);

  /* Rejected from the headers alone: no body byte is ever sent. */
  client *c = client_open(main_port);
  client_send_str(c, "POST " PUBLISH_PATH " HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: 99999999999\r\n\r\n");
  check_rejected(c, 413, expected);
  client_close(c);

  c = client_open(main_port);
  client_send_str(c, "POST " PUBLISH_PATH " HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: 20000000\r\n\r\n{\"apis\":[");
  check_rejected(c, 413, expected);
  client_close(c);

  /* One chunk announced larger than the limit. */
  c = client_open(main_port);
  client_send_str(c, "POST " PUBLISH_PATH " HTTP/1.1\r\nHost: t\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n1000000\r\n");
  check_rejected(c, 413, expected);
  client_close(c);

  /* Small chunks whose sum passes the limit. */
  c = client_open(main_port);
  size_t chunk = 65536;
  char *data = malloc(chunk);
  memset(data, ' ', chunk);
  client_send_str(c, "POST " PUBLISH_PATH " HTTP/1.1\r\nHost: t\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
  size_t sent = 0;
  while (sent <= strtoul(limit, NULL, 10)) {
    client_send_str(c, "10000\r\n");
    client_send(c, data, chunk);
    client_send_str(c, "\r\n");
    sent += chunk;
  }
  check_rejected(c, 413, expected);
  client_close(c);
  free(data);
}

static void test_bad_framing_400(void) {
  static const char *requests[] = {
      "Content-Length: 18446744073709551616\r\n\r\n",
      "Content-Length: -5\r\n\r\n",
      "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
      "Content-Length: 5x\r\n\r\nhello",
      "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
      "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "Transfer-Encoding: gzip\r\n\r\nhello",
  };
  for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
    client *c = client_open(main_port);
    client_send_str(c, "POST /framing HTTP/1.1\r\nHost: t\r\n");
    client_send_str(c, requests[i]);
    check_rejected(c, 400, "APIG.2000");
    client_close(c);
  }
}

static void test_smuggled_request_400(void) {
  static const char *framings[] = {
      "Content-Length: 42\r\nTransfer-Encoding: chunked\r\n\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: 42\r\n\r\n",
  };
  for (size_t i = 0; i < 2; i++) {
    client *c = client_open(main_port);
    client_send_str(c, "POST " PUBLISH_PATH " HTTP/1.1\r\nHost: t\r\n");
    client_send_str(c, framings[i]);
    client_send_str(c, "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    /* One response only: the hidden request never runs. */
    check_rejected(c, 400, "APIG.2000");
    client_close(c);
  }
}

typedef struct sender_args {
  client *c;
  int count;
  int shut_down; /* end the input after the last request */
} sender_args;

static void *send_many(void *arg) {
  sender_args *args = arg;
  char request[128];
  for (int i = 0; i < args->count; i++) {
    snprintf(request, sizeof request,
             "GET /many-%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    client_send_str(args->c, request);
  }
  if (args->shut_down)
    shutdown(args->c->fd, SHUT_WR);
  return NULL;
}

static void test_half_close_responds_all(void) {
  client *c = client_open(main_port);
  response r;

  client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /half-path HTTP/1.1\r\nHost: t\r\n\r\n");
  shutdown(c->fd, SHUT_WR);
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 200);
  response_free(&r);
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 404);
  response_free(&r);
  CHECK_INT(wait_closed(c), 1);
  CHECK_INT(c->len, 0);
  client_close(c);
}

/* Enough pipelined requests that responses are still queued when the
 * end of input arrives. */
static void test_half_close_many(void) {
  client *c = client_open_with(main_port, 4096);
  sender_args args = {c, 30000, 1};
  pthread_t sender;
  response r;
  int all = 1;

  pthread_create(&sender, NULL, send_many, &args);
  sleep_ms(300);
  for (int i = 0; i < args.count && all; i++) {
    all = read_response(c, &r) == 0 && r.status == 404;
    response_free(&r);
  }
  pthread_join(sender, NULL);
  CHECK(all);
  CHECK_INT(wait_closed(c), 1);
  CHECK_INT(c->len, 0);
  client_close(c);
}

static void check_connection(const char *request, const char *expected,
                             int closes) {
  client *c = client_open(main_port);
  response r;
  char value[64] = "";

  client_send_str(c, request);
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 200);
  header_value(&r, "Connection", value, sizeof value);
  CHECK_STR(value, expected);
  response_free(&r);
  if (closes) {
    CHECK_INT(wait_closed(c), 1);
  } else {
    client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK_INT(read_response(c, &r), 0);
    CHECK_INT(r.status, 200);
    response_free(&r);
  }
  client_close(c);
}

static void test_connection_header(void) {
  check_connection("GET /healthz HTTP/1.0\r\n\r\n", "close", 1);
  check_connection("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                   "keep-alive", 0);
  check_connection("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "keep-alive",
                   0);
  check_connection("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
                   "close", 1);
}

static void test_request_timeout_408(void) {
  client *c = client_open(slow_port);
  double start = now_ms();

  client_send_str(c, "GET /healthz HTTP/1.1\r\nHost:");
  check_rejected(c, 408, "within 0.3 seconds");
  double elapsed = now_ms() - start;
  CHECK(elapsed >= 250);
  CHECK(elapsed < 3000);
  client_close(c);
}

static void test_idle_timeout_closes(void) {
  client *c = client_open(slow_port);
  response r;
  double start;

  client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(read_response(c, &r), 0);
  CHECK_INT(r.status, 200);
  response_free(&r);
  start = now_ms();
  CHECK_INT(wait_closed(c), 1);
  CHECK_INT(c->len, 0);
  CHECK(now_ms() - start < 3000);
  client_close(c);
}

static void test_connection_limit(void) {
  client *first = client_open(small_port);
  response r;

  client_send_str(first, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(read_response(first, &r), 0);
  CHECK_INT(r.status, 200);
  response_free(&r);

  client *second = client_open(small_port);
  client_send_str(second, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(wait_closed(second), 1);
  CHECK_INT(second->len, 0);
  client_close(second);
  client_close(first);
}

/* Resets connections while responses are being written, then checks that
 * the server still serves. */
static void test_peer_reset(void) {
  struct linger hard = {1, 0};
  for (int round = 0; round < 2; round++) {
    client *c = client_open(main_port);
    for (int i = 0; i < (round ? 2000 : 1); i++)
      client_send_str(c, "GET /reset-path HTTP/1.1\r\nHost: t\r\n\r\n");
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    client_close(c);
  }
  sleep_ms(50);
  CHECK_INT(status_of(main_port,
                      "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
}

/* More pipelined responses than the socket buffers hold: the server pauses
 * parsing while output waits and keeps the order. */
static void test_pipelined_backpressure(void) {
  client *c = client_open(main_port);
  sender_args args = {c, 5000, 0};
  pthread_t sender;
  response r;
  char expected[64];
  int in_order = 1;

  pthread_create(&sender, NULL, send_many, &args);
  sleep_ms(200);
  for (int i = 0; i < args.count; i++) {
    if (read_response(c, &r) != 0) {
      in_order = 0;
      break;
    }
    snprintf(expected, sizeof expected, "/many-%d\"", i);
    if (r.status != 404 || !strstr(r.body, expected))
      in_order = 0;
    response_free(&r);
  }
  pthread_join(sender, NULL);
  CHECK(in_order);
  client_close(c);
}

static void test_listen_errors(void) {
  static const char *invalid[] = {
      "nonsense", "127.0.0.1",   "127.0.0.1:",   "127.0.0.1:99999",
      ":80",      "[::1",        "[::1]80",      "[::1]:x",
      "1.2.3:80", "127.0.0.1:-1", "localhost:80",
  };
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    apig_http_server *server = (apig_http_server *)&server;
    char *errmsg = NULL;
    int rc = apig_http_start(apig, &loop, invalid[i], NULL, &server, &errmsg);
    CHECK_INT(rc, -1);
    CHECK(server == NULL);
    CHECK(errmsg != NULL);
    CHECK(errmsg && strstr(errmsg, invalid[i]) != NULL);
    apig_free(errmsg);
  }

  /* A port already taken fails when the server binds. */
  apig_http_server *server = NULL;
  char *errmsg = NULL;
  char taken[64];
  snprintf(taken, sizeof taken, "127.0.0.1:%d", main_port);
  CHECK_INT(apig_http_start(apig, &loop, taken, NULL, &server, &errmsg), -1);
  CHECK(errmsg != NULL);
  CHECK(errmsg && strstr(errmsg, "address already in use") != NULL);
  apig_free(errmsg);
}

static int ipv6_loopback_available(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 addr = {.sin6_family = AF_INET6};
  addr.sin6_addr = in6addr_loopback;
  int ok = fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

static void test_limits_defaults(void) {
  apig_http_limits limits;
  apig_http_limits_init(&limits);
  CHECK_INT(limits.max_header_bytes, 16384);
  CHECK_INT(limits.request_timeout_ms, 30000);
  CHECK_INT(limits.idle_timeout_ms, 60000);
  CHECK_INT(limits.max_connections, 10000);
}

int main(void) {
  static const char *instances[] = {"p1:i1"};
  apig_options options;
  apig_http_limits limits;
  int v6_port = 0;
  char *errmsg = NULL;
  pthread_t thread;

  apig_options_init(&options);
  options.instances = instances;
  options.instance_count = 1;
  options.log = on_log;
  options.log_level = APIG_LOG_DEBUG;
  apig = apig_open(&options, &errmsg);
  if (!apig) {
    fprintf(stderr, "apig_open failed: %s\n", errmsg ? errmsg : "?");
    return 1;
  }
  uv_loop_init(&loop);
  uv_async_init(&loop, &stop_async, on_stop_request);

  test_limits_defaults();
  apig_http_limits_init(&limits);
  main_server = start_server(&limits, &main_port);
  limits.request_timeout_ms = 300;
  limits.idle_timeout_ms = 300;
  slow_server = start_server(&limits, &slow_port);
  apig_http_limits_init(&limits);
  limits.max_connections = 1;
  small_server = start_server(&limits, &small_port);
  if (ipv6_loopback_available()) {
    CHECK_INT(apig_http_start(apig, &loop, "[::1]:0", NULL, &v6_server,
                              &errmsg), 0);
    v6_port = v6_server ? apig_http_port(v6_server) : 0;
  }
  test_listen_errors();
  pthread_create(&thread, NULL, run_loop, NULL);

  if (v6_port > 0) {
    int fd = connect_to(AF_INET6, v6_port, 0);
    CHECK(fd >= 0);
    close(fd);
  }
  test_healthz_keeps_alive();
  test_unknown_path_404();
  test_pipelined_in_order();
  test_one_byte_at_a_time();
  test_split_inside_fields();
  test_chunked_extension_trailer();
  test_chunked_body_reaches_handler();
  test_many_header_lines_431();
  test_large_header_431();
  test_body_too_large_413();
  test_bad_framing_400();
  test_smuggled_request_400();
  test_half_close_responds_all();
  test_half_close_many();
  test_connection_header();
  test_request_timeout_408();
  test_idle_timeout_closes();
  test_connection_limit();
  test_peer_reset();
  test_pipelined_backpressure();

  /* Stopping closes idle connections and ends the loop. */
  client *idle = client_open(main_port);
  response r;
  client_send_str(idle, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_INT(read_response(idle, &r), 0);
  response_free(&r);
  uv_async_send(&stop_async);
  CHECK_INT(wait_closed(idle), 1);
  client_close(idle);
  pthread_join(thread, NULL);
  CHECK_INT(stopped_servers, v6_server ? 4 : 3);
  CHECK_INT(uv_loop_close(&loop), 0);
  apig_close(apig);
  return test_report("test_http");
}
