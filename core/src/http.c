/* HTTP/1.1 server over libuv and llhttp, responding through apig_dispatch.
 *
 * Each connection owns one llhttp parser and handles one request at a time:
 * on_message_complete pauses the parser, the request is dispatched, and the
 * bytes still buffered are parsed only once its response is queued. Reading
 * from the socket stops while bytes wait, so responses leave in request order.
 * URL, header and body pieces are copied into one per-request arena as the
 * callbacks deliver them, because the read buffer is shared and reused.
 *
 * After an error response (400, 408, 413, 431) or "Connection: close", the
 * connection shuts down its write side once the response is written, then
 * reads and drops what the client still sends for a short while. Closing
 * at once with unread bytes would make the kernel send a reset, and the
 * client could lose the response.
 */
#include "http.h"

#include <inttypes.h>
#include <stdarg.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"

#define READ_BUFFER_SIZE 65536
#define LISTEN_BACKLOG 511
/* Time to keep reading after shutting down the write side. */
#define LINGER_MS 2000
/* Stop parsing pipelined requests while this much output is unsent. */
#define WRITE_HIGH_WATER (256 * 1024)
#define PENDING_MAX (64 * 1024) /* input kept while a request waits */
/* At most one "connection limit reached" warning per interval. */
#define REJECT_LOG_INTERVAL_MS 1000

/* Once the server stops, a request still arriving must complete within
 * this many milliseconds, or it is answered 503 and closed. */
#define STOP_GRACE_MS 2000

typedef enum conn_phase {
  PHASE_IDLE,      /* between requests; the idle timer runs */
  PHASE_RECEIVING, /* bytes of a request arrived; the request timer runs */
  PHASE_WAITING,   /* dispatched, the response waits for the journal */
  PHASE_DONE       /* the last response is queued; nothing more is parsed */
} conn_phase;

/* A header as offsets into the request arena, which may move as it grows. */
typedef struct http_field {
  size_t name_off, name_len;
  size_t value_off, value_len;
} http_field;

typedef struct http_conn http_conn;

struct apig_http_server {
  apig_t *apig;
  uv_loop_t *loop;
  const apig_allocator *allocator;
  uv_tcp_t listener;
  apig_http_limits limits;
  int port;
  http_conn *conns;
  unsigned conn_count;
  unsigned rejecting; /* refused connections whose handles still close */
  unsigned rejected;  /* refused since the last warning */
  uint64_t reject_logged_ms;
  int stopping;
  int listener_closed;
  void (*on_stopped)(void *arg);
  void *stop_arg;
  char read_buffer[READ_BUFFER_SIZE];
};

struct http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  llhttp_t parser;
  apig_http_server *server;
  http_conn *prev, *next;
  char peer[64];

  conn_phase phase;
  unsigned open_handles;  /* tcp and timer until their close callbacks */
  unsigned writes;        /* uv_write requests in flight */
  int reading;
  int read_eof;           /* the client shut down its write side */
  int finishing;          /* close once the queued output is written */
  int lingering;          /* write side shut down, dropping input */
  int closing;            /* uv_close called */
  int waiting_durable;    /* apig_durable_wait has not called back yet */
  int in_dispatch;
  int write_blocked;      /* too much output unsent to parse more */

  /* Bytes read but not parsed yet, kept while a request is handled. */
  char *pending;
  size_t pending_len, pending_off;

  /* The request being parsed. */
  apig_buf arena;
  size_t url_len;
  http_field *fields;
  size_t field_count, field_cap;
  size_t body_off, body_len;
  size_t body_limit;
  size_t header_bytes;  /* request line and headers seen so far */
  size_t trailer_bytes;
  const char *scan;     /* end of the input counted into header_bytes */
  int in_headers;
  int in_trailers;
  int in_field;
  int in_value;
  unsigned content_length_count;
  int has_transfer_encoding;
  int expect_continue;
  int keep_alive;
  int error;            /* apig_error to respond with, or -1 */
  char error_arg[96];

  apig_reply reply;     /* held while the journal catches up */
};

typedef struct http_write {
  uv_write_t req;
  apig_buf out;
} http_write;

static const llhttp_settings_t parser_settings;

void apig_http_limits_init(apig_http_limits *limits) {
  limits->max_header_bytes = 16384;
  limits->request_timeout_ms = 30000;
  limits->idle_timeout_ms = 60000;
  limits->max_connections = 10000;
}

static const apig_allocator *current_allocator(void) {
  const apig_allocator *current = apig_alloc_enter(NULL);
  apig_alloc_leave(current);
  return current;
}

static const apig_logger *server_logger(const apig_http_server *server) {
  return apig_get_logger(server->apig);
}

/* ---- Closing and freeing ---------------------------------------------- */

static void server_free_if_stopped(apig_http_server *server) {
  if (!server->stopping || !server->listener_closed)
    return;
  if (server->conn_count > 0 || server->rejecting > 0)
    return;
  void (*on_stopped)(void *) = server->on_stopped;
  void *arg = server->stop_arg;
  apig_free(server);
  if (on_stopped)
    on_stopped(arg);
}

static void request_clear(http_conn *conn) {
  apig_buf_free(&conn->arena);
  apig_free(conn->fields);
  conn->fields = NULL;
  conn->field_count = conn->field_cap = 0;
  conn->url_len = conn->body_off = conn->body_len = 0;
}

static void conn_free(http_conn *conn) {
  apig_http_server *server = conn->server;

  if (conn->prev)
    conn->prev->next = conn->next;
  else
    server->conns = conn->next;
  if (conn->next)
    conn->next->prev = conn->prev;
  server->conn_count--;

  request_clear(conn);
  apig_free(conn->pending);
  apig_free(conn);
  server_free_if_stopped(server);
}

static void conn_on_handle_closed(uv_handle_t *handle) {
  http_conn *conn = handle->data;
  const apig_allocator *previous = apig_alloc_enter(conn->server->allocator);

  conn->open_handles--;
  if (conn->open_handles == 0 && !conn->waiting_durable)
    conn_free(conn);
  apig_alloc_leave(previous);
}

/* Closes both handles now; queued writes are cancelled. */
static void conn_close(http_conn *conn) {
  if (conn->closing)
    return;
  conn->closing = 1;
  conn->phase = PHASE_DONE;
  uv_close((uv_handle_t *)&conn->tcp, conn_on_handle_closed);
  uv_close((uv_handle_t *)&conn->timer, conn_on_handle_closed);
}

static void conn_on_linger_timeout(uv_timer_t *timer) {
  conn_close(timer->data);
}

static void conn_start_timer(http_conn *conn, uv_timer_cb cb,
                             uint64_t timeout_ms) {
  if (!conn->closing)
    uv_timer_start(&conn->timer, cb, timeout_ms, 0);
}

static void conn_on_alloc(uv_handle_t *handle, size_t suggested,
                          uv_buf_t *buf);
static void conn_on_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf);

static void conn_read_start(http_conn *conn) {
  if (conn->reading || conn->closing)
    return;
  if (uv_read_start((uv_stream_t *)&conn->tcp, conn_on_alloc,
                    conn_on_read) != 0) {
    conn_close(conn);
    return;
  }
  conn->reading = 1;
}

static void conn_read_stop(http_conn *conn) {
  if (!conn->reading || conn->closing)
    return;
  uv_read_stop((uv_stream_t *)&conn->tcp);
  conn->reading = 0;
}

static void conn_on_shutdown(uv_shutdown_t *req, int status) {
  http_conn *conn = req->data;

  if (status < 0 || conn->read_eof) {
    conn_close(conn);
    return;
  }
  conn->lingering = 1;
  conn_start_timer(conn, conn_on_linger_timeout, LINGER_MS);
  conn_read_start(conn);
}

/* Shuts down the write side once every response is written. */
static void conn_shutdown(http_conn *conn) {
  if (conn->closing || conn->lingering)
    return;
  if (conn->read_eof) {
    conn_close(conn);
    return;
  }
  conn->shutdown_req.data = conn;
  if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp,
                  conn_on_shutdown) != 0)
    conn_close(conn);
}

/* Stops parsing; the connection closes after its queued output. */
static void conn_finish(http_conn *conn) {
  if (conn->finishing || conn->closing)
    return;
  conn->finishing = 1;
  conn->phase = PHASE_DONE;
  uv_timer_stop(&conn->timer);
  conn_read_stop(conn);
  if (conn->writes == 0)
    conn_shutdown(conn);
}

/* ---- Writing ------------------------------------------------------------ */

static void conn_continue(http_conn *conn);

static void conn_on_write(uv_write_t *req, int status) {
  http_write *write = req->data;
  http_conn *conn = write->req.handle->data;
  const apig_allocator *previous = apig_alloc_enter(conn->server->allocator);

  apig_buf_free(&write->out);
  apig_free(write);
  conn->writes--;
  if (status < 0) {
    if (status != UV_ECANCELED)
      apig_logf(server_logger(conn->server), APIG_LOG_DEBUG, "",
                "writing to %s failed: %s", conn->peer, uv_strerror(status));
    conn_close(conn);
  } else if (conn->writes == 0 && conn->finishing) {
    conn_shutdown(conn);
  } else if (conn->write_blocked &&
             uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) <
                 WRITE_HIGH_WATER) {
    conn->write_blocked = 0;
    conn_continue(conn);
  }
  apig_alloc_leave(previous);
}

/* Sends out (and takes it over): as much as the socket accepts now, the
 * rest through uv_write. A failed write closes the connection. */
static void conn_write(http_conn *conn, apig_buf *out) {
  if (conn->closing || out->failed) {
    apig_buf_free(out);
    conn_close(conn);
    return;
  }

  uv_buf_t buf = uv_buf_init(out->data, (unsigned)out->len);
  int sent = uv_try_write((uv_stream_t *)&conn->tcp, &buf, 1);
  if (sent == UV_EAGAIN || sent == UV_ENOSYS)
    sent = 0;
  if (sent < 0 || (size_t)sent == out->len) {
    apig_buf_free(out);
    if (sent < 0)
      conn_close(conn);
    return;
  }

  http_write *write = apig_malloc(sizeof *write);
  if (!write) {
    apig_buf_free(out);
    conn_close(conn);
    return;
  }
  write->out = *out;
  write->req.data = write;
  buf = uv_buf_init(out->data + sent, (unsigned)(out->len - (size_t)sent));
  apig_buf_init(out);
  if (uv_write(&write->req, (uv_stream_t *)&conn->tcp, &buf, 1,
               conn_on_write) != 0) {
    apig_buf_free(&write->out);
    apig_free(write);
    conn_close(conn);
    return;
  }
  conn->writes++;
}

static const char *status_reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return status < 400 ? "OK" : status < 500 ? "Client Error"
                                                      : "Server Error";
  }
}

/* Writes the status line, the headers and the body of reply. A HEAD
 * request gets the headers only. */
static void conn_send_reply(http_conn *conn, const apig_reply *reply,
                            int keep_alive, int head) {
  apig_buf out;
  apig_header headers[4];
  size_t count = apig_reply_headers(reply, headers);

  apig_buf_init(&out);
  apig_buf_reserve(&out, 512 + (head ? 0 : reply->body.len));
  apig_buf_puts(&out, "HTTP/1.1 ");
  apig_buf_put_uint(&out, (unsigned)reply->status);
  apig_buf_putc(&out, ' ');
  apig_buf_puts(&out, status_reason(reply->status));
  apig_buf_puts(&out, "\r\n");
  for (size_t i = 0; i < count; i++) {
    apig_buf_append(&out, headers[i].name, headers[i].name_len);
    apig_buf_append(&out, ": ", 2);
    apig_buf_append(&out, headers[i].value, headers[i].value_len);
    apig_buf_append(&out, "\r\n", 2);
  }
  if (reply->status != 204) {
    apig_buf_puts(&out, "Content-Length: ");
    apig_buf_put_uint(&out, reply->body.len);
    apig_buf_puts(&out, "\r\n");
  }
  apig_buf_puts(&out, keep_alive ? "Connection: keep-alive\r\n\r\n"
                                 : "Connection: close\r\n\r\n");
  if (reply->status != 204 && !head && reply->body.len > 0)
    apig_buf_append(&out, reply->body.data, reply->body.len);
  apig_log_flush(server_logger(conn->server));
  conn_write(conn, &out);
  apig_log_flush(server_logger(conn->server));
}

/* Responds with an error of the HTTP layer and closes the connection. */
static void conn_reject(http_conn *conn, apig_error error, const char *arg) {
  apig_reply reply;

  if (conn->finishing || conn->closing)
    return;
  apig_reply_init(&reply);
  apig_new_request_id(reply.request_id);
  apig_reply_error(&reply, error, arg);
  apig_logf(server_logger(conn->server), APIG_LOG_INFO, reply.request_id,
            "rejected request from %s: status %d, %s %s", conn->peer,
            reply.status, apig_error_code(error), arg ? arg : "");
  conn_send_reply(conn, &reply, 0, 0);
  apig_reply_free(&reply);
  conn_finish(conn);
}

/* ---- Timers ------------------------------------------------------------- */

static void conn_on_idle_timeout(uv_timer_t *timer) {
  http_conn *conn = timer->data;
  const apig_allocator *previous = apig_alloc_enter(conn->server->allocator);

  conn_close(conn);
  apig_alloc_leave(previous);
}

static void format_seconds(char *out, size_t size, uint64_t ms) {
  if (ms % 1000 == 0) {
    snprintf(out, size, "%" PRIu64, ms / 1000);
    return;
  }
  snprintf(out, size, "%" PRIu64 ".%03" PRIu64, ms / 1000, ms % 1000);
  char *end = out + strlen(out) - 1;
  while (*end == '0')
    *end-- = '\0';
}

static void conn_on_request_timeout(uv_timer_t *timer) {
  http_conn *conn = timer->data;
  const apig_allocator *previous = apig_alloc_enter(conn->server->allocator);
  char seconds[32];

  if (conn->phase == PHASE_RECEIVING && conn->server->stopping) {
    conn_reject(conn, APIG_E_UNAVAILABLE, "the server is stopping");
  } else if (conn->phase == PHASE_RECEIVING) {
    format_seconds(seconds, sizeof seconds,
                   conn->server->limits.request_timeout_ms);
    conn_reject(conn, APIG_E_REQUEST_TIMEOUT, seconds);
  }
  apig_alloc_leave(previous);
}

static void conn_set_idle(http_conn *conn) {
  conn->phase = PHASE_IDLE;
  conn_start_timer(conn, conn_on_idle_timeout,
                   conn->server->limits.idle_timeout_ms);
}

/* ---- Dispatch ----------------------------------------------------------- */

static void conn_after_reply(http_conn *conn, int keep_alive) {
  if (!keep_alive) {
    conn_finish(conn);
    return;
  }
  conn_set_idle(conn);
  if (conn->writes > 0 &&
      uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) >=
          WRITE_HIGH_WATER)
    conn->write_blocked = 1;
}

static int conn_keeps_alive(const http_conn *conn) {
  return conn->keep_alive && !conn->server->stopping;
}

static void conn_send_held_reply(http_conn *conn) {
  int keep_alive = conn_keeps_alive(conn);
  int head = conn->parser.method == HTTP_HEAD;

  conn_send_reply(conn, &conn->reply, keep_alive, head);
  apig_reply_free(&conn->reply);
  conn_after_reply(conn, keep_alive);
}

static void conn_on_durable(void *arg, int status) {
  http_conn *conn = arg;
  const apig_allocator *previous = apig_alloc_enter(conn->server->allocator);

  conn->waiting_durable = 0;
  if (status < 0) {
    /* The journal write failed; the store rolled the change back. */
    apig_reply_error(&conn->reply, APIG_E_SYSTEM);
    conn->reply.allow[0] = '\0';
  }

  if (conn->closing) {
    /* The client went away while the journal caught up. */
    apig_reply_free(&conn->reply);
    if (conn->open_handles == 0)
      conn_free(conn);
  } else {
    conn_send_held_reply(conn);
    if (!conn->in_dispatch)
      conn_continue(conn);
  }
  apig_alloc_leave(previous);
}

/* Builds the header array of the request; names and values point into the
 * arena. Returns NULL when memory runs out. */
static apig_header *conn_headers(http_conn *conn) {
  apig_header *headers =
      apig_calloc(conn->field_count ? conn->field_count : 1, sizeof *headers);
  if (!headers)
    return NULL;
  for (size_t i = 0; i < conn->field_count; i++) {
    const http_field *field = &conn->fields[i];
    headers[i].name = conn->arena.data + field->name_off;
    headers[i].name_len = field->name_len;
    headers[i].value = conn->arena.data + field->value_off;
    headers[i].value_len = field->value_len;
  }
  return headers;
}

/* Runs the complete request and sends its response, at once or when the
 * journal has it on disk. */
static void conn_dispatch(http_conn *conn) {
  apig_header *headers = conn_headers(conn);
  if (!headers || conn->arena.failed) {
    apig_free(headers);
    request_clear(conn);
    conn_reject(conn, APIG_E_SYSTEM, NULL);
    return;
  }

  apig_req req = {
      .method = llhttp_method_name((llhttp_method_t)conn->parser.method),
      .target = conn->arena.data ? conn->arena.data : "",
      .target_len = conn->url_len,
      .headers = headers,
      .header_count = conn->field_count,
      .body = conn->arena.data + conn->body_off,
      .body_len = conn->body_len,
      .peer = conn->peer,
  };
  apig_reply_init(&conn->reply);
  conn->phase = PHASE_WAITING;
  uv_timer_stop(&conn->timer);
  apig_dispatch(conn->server->apig, &req, &conn->reply);
  apig_free(headers);
  request_clear(conn);

  if (conn->reply.durable_seq == 0) {
    conn_send_held_reply(conn);
    return;
  }
  conn->waiting_durable = 1;
  conn->in_dispatch = 1;
  apig_durable_wait(conn->server->apig, conn->reply.durable_seq,
                    conn_on_durable, conn);
  conn->in_dispatch = 0;
}

/* ---- Parsing ------------------------------------------------------------ */

static int conn_blocked(const http_conn *conn) {
  return conn->phase == PHASE_WAITING || conn->phase == PHASE_DONE ||
         conn->write_blocked || conn->closing;
}

static int conn_fail(http_conn *conn, apig_error error, const char *arg) {
  if (conn->error < 0) {
    conn->error = (int)error;
    snprintf(conn->error_arg, sizeof conn->error_arg, "%s", arg ? arg : "");
  }
  return -1;
}

static int conn_fail_headers_too_large(http_conn *conn) {
  char limit[32];
  snprintf(limit, sizeof limit, "%zu", conn->server->limits.max_header_bytes);
  return conn_fail(conn, APIG_E_HEADERS_TOO_LARGE, limit);
}

static int conn_fail_body_too_large(http_conn *conn) {
  char limit[32];
  snprintf(limit, sizeof limit, "%zu", conn->body_limit);
  return conn_fail(conn, APIG_E_BODY_TOO_LARGE, limit);
}

/* Counts the input up to `end` into the request line and header bytes.
 * Counting raw input, not only the pieces handed to callbacks, also covers
 * the whitespace and line ends between them. */
static int conn_count_header_bytes(http_conn *conn, const char *end) {
  if (!conn->in_headers || !conn->scan || end < conn->scan)
    return 0;
  conn->header_bytes += (size_t)(end - conn->scan);
  conn->scan = end;
  if (conn->header_bytes > conn->server->limits.max_header_bytes)
    return conn_fail_headers_too_large(conn);
  return 0;
}

static int conn_append(http_conn *conn, const char *at, size_t length) {
  apig_buf_append(&conn->arena, at, length);
  if (conn->arena.failed)
    return conn_fail(conn, APIG_E_SYSTEM, NULL);
  return 0;
}

static int on_message_begin(llhttp_t *parser) {
  http_conn *conn = parser->data;

  request_clear(conn);
  conn->header_bytes = conn->trailer_bytes = 0;
  conn->in_headers = 1;
  conn->in_trailers = conn->in_field = conn->in_value = 0;
  conn->content_length_count = 0;
  conn->has_transfer_encoding = 0;
  conn->expect_continue = 0;
  conn->keep_alive = 0;
  return 0;
}

static int on_url(llhttp_t *parser, const char *at, size_t length) {
  http_conn *conn = parser->data;

  if (conn_count_header_bytes(conn, at + length) != 0)
    return -1;
  conn->url_len += length;
  return conn_append(conn, at, length);
}

static int on_status(llhttp_t *parser, const char *at, size_t length) {
  return 0; /* responses only */
}

static int on_method(llhttp_t *parser, const char *at, size_t length) {
  return conn_count_header_bytes(parser->data, at + length);
}

static int on_version(llhttp_t *parser, const char *at, size_t length) {
  return conn_count_header_bytes(parser->data, at + length);
}

/* Trailer fields are counted against the header limit and dropped. */
static int conn_count_trailer(http_conn *conn, size_t length) {
  conn->trailer_bytes += length;
  if (conn->trailer_bytes > conn->server->limits.max_header_bytes)
    return conn_fail_headers_too_large(conn);
  return 0;
}

static int conn_add_field(http_conn *conn) {
  if (conn->field_count == conn->field_cap) {
    size_t cap = conn->field_cap ? conn->field_cap * 2 : 16;
    http_field *fields = apig_realloc(conn->fields, cap * sizeof *fields);
    if (!fields)
      return conn_fail(conn, APIG_E_SYSTEM, NULL);
    conn->fields = fields;
    conn->field_cap = cap;
  }
  http_field *field = &conn->fields[conn->field_count++];
  field->name_off = conn->arena.len;
  field->name_len = 0;
  field->value_off = conn->arena.len;
  field->value_len = 0;
  return 0;
}

static int on_header_field(llhttp_t *parser, const char *at, size_t length) {
  http_conn *conn = parser->data;

  if (conn->in_trailers)
    return conn_count_trailer(conn, length + 4);
  if (conn_count_header_bytes(conn, at + length) != 0)
    return -1;
  if (!conn->in_field) {
    if (conn_add_field(conn) != 0)
      return -1;
    conn->in_field = 1;
  }
  conn->fields[conn->field_count - 1].name_len += length;
  return conn_append(conn, at, length);
}

static int on_header_field_complete(llhttp_t *parser) {
  http_conn *conn = parser->data;

  conn->in_field = 0;
  conn->in_value = 0;
  return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t length) {
  http_conn *conn = parser->data;

  if (conn->in_trailers)
    return conn_count_trailer(conn, length);
  if (conn_count_header_bytes(conn, at + length) != 0)
    return -1;
  http_field *field = &conn->fields[conn->field_count - 1];
  if (!conn->in_value) {
    field->value_off = conn->arena.len;
    conn->in_value = 1;
  }
  field->value_len += length;
  return conn_append(conn, at, length);
}

static int field_is(const http_conn *conn, const http_field *field,
                    const char *name) {
  size_t len = strlen(name);
  return field->name_len == len &&
         strncasecmp(conn->arena.data + field->name_off, name, len) == 0;
}

/* Accepts decimal digits only, whose value fits in 64 bits. */
static int content_length_valid(const char *value, size_t len) {
  uint64_t n = 0;

  if (len == 0)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (value[i] < '0' || value[i] > '9')
      return 0;
    unsigned digit = (unsigned)(value[i] - '0');
    if (n > (UINT64_MAX - digit) / 10)
      return 0;
    n = n * 10 + digit;
  }
  return 1;
}

/* Is the value exactly "chunked" (any case), the only transfer coding the
 * server decodes? A coding before it, such as "gzip, chunked", is not. */
static int only_chunked(const char *value, size_t len) {
  while (len > 0 && (*value == ' ' || *value == '\t')) {
    value++;
    len--;
  }
  while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
    len--;
  return len == 7 && strncasecmp(value, "chunked", 7) == 0;
}

/* Rejects the framing headers that let a request be read two ways: a
 * repeated Content-Length (even with equal values), one that is not a plain
 * number, Content-Length together with Transfer-Encoding, and a transfer
 * coding other than chunked alone. */
static int conn_check_framing(http_conn *conn, const http_field *field) {
  if (field_is(conn, field, "content-length")) {
    if (++conn->content_length_count > 1)
      return conn_fail(conn, APIG_E_BAD_REQUEST,
                       "duplicate Content-Length header");
    if (!content_length_valid(conn->arena.data + field->value_off,
                              field->value_len))
      return conn_fail(conn, APIG_E_BAD_REQUEST,
                       "invalid Content-Length value");
  } else if (field_is(conn, field, "transfer-encoding")) {
    if (conn->has_transfer_encoding ||
        !only_chunked(conn->arena.data + field->value_off, field->value_len))
      return conn_fail(conn, APIG_E_BAD_REQUEST,
                       "unsupported Transfer-Encoding (only chunked is)");
    conn->has_transfer_encoding = 1;
  } else if (field_is(conn, field, "expect")) {
    conn->expect_continue =
        field->value_len == 12 &&
        strncasecmp(conn->arena.data + field->value_off, "100-continue",
                    12) == 0;
    return 0;
  } else {
    return 0;
  }
  if (conn->content_length_count > 0 && conn->has_transfer_encoding)
    return conn_fail(conn, APIG_E_BAD_REQUEST,
                     "Content-Length and Transfer-Encoding together");
  return 0;
}

static int on_header_value_complete(llhttp_t *parser) {
  http_conn *conn = parser->data;

  if (conn->in_trailers)
    return 0;
  http_field *field = &conn->fields[conn->field_count - 1];
  if (!conn->in_value)
    field->value_off = conn->arena.len; /* empty value */
  conn->in_value = 0;
  return conn_check_framing(conn, field);
}

/* Tells a client that waits before sending its body to go on. */
static void conn_send_continue(http_conn *conn) {
  static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
  apig_buf out;

  apig_buf_init(&out);
  apig_buf_append(&out, line, sizeof line - 1);
  conn_write(conn, &out);
}

static int on_headers_complete(llhttp_t *parser) {
  http_conn *conn = parser->data;
  const char *target = conn->arena.data ? conn->arena.data : "";
  const char *query = memchr(target, '?', conn->url_len);
  size_t path_len = query ? (size_t)(query - target) : conn->url_len;

  conn->in_headers = 0;
  conn->in_trailers = 1; /* any field from now on is a trailer */
  conn->body_off = conn->arena.len;
  if (parser->http_major != 1)
    return conn_fail(conn, APIG_E_BAD_REQUEST, "unsupported HTTP version");
  conn->body_limit = apig_body_limit(conn->server->apig, target, path_len);
  if ((parser->flags & F_CONTENT_LENGTH) &&
      parser->content_length > conn->body_limit)
    return conn_fail_body_too_large(conn);
  if (conn->expect_continue)
    conn_send_continue(conn);
  return 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t length) {
  http_conn *conn = parser->data;

  if (length > conn->body_limit - conn->body_len)
    return conn_fail_body_too_large(conn);
  conn->body_len += length;
  return conn_append(conn, at, length);
}

/* Rejects a chunk that would take the body past its limit before any of
 * its bytes arrive. */
static int on_chunk_header(llhttp_t *parser) {
  http_conn *conn = parser->data;

  if (parser->content_length > conn->body_limit - conn->body_len)
    return conn_fail_body_too_large(conn);
  return 0;
}

static int on_message_complete(llhttp_t *parser) {
  http_conn *conn = parser->data;

  conn->in_trailers = 0;
  conn->keep_alive = llhttp_should_keep_alive(parser) && !parser->upgrade;
  return HPE_PAUSED; /* one request at a time; see conn_parse */
}

static int on_complete_ignored(llhttp_t *parser) { return 0; }

static int on_data_ignored(llhttp_t *parser, const char *at, size_t length) {
  return 0;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_method = on_method,
    .on_version = on_version,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_chunk_extension_name = on_data_ignored,
    .on_chunk_extension_value = on_data_ignored,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_url_complete = on_complete_ignored,
    .on_status_complete = on_complete_ignored,
    .on_method_complete = on_complete_ignored,
    .on_version_complete = on_complete_ignored,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_chunk_extension_name_complete = on_complete_ignored,
    .on_chunk_extension_value_complete = on_complete_ignored,
    .on_chunk_header = on_chunk_header,
    .on_chunk_complete = on_complete_ignored,
    .on_reset = on_complete_ignored,
};

/* Responds to a request that the parser or a limit rejected. */
static void conn_reject_parse_error(http_conn *conn, llhttp_errno_t err) {
  if (conn->error >= 0) {
    apig_error error = (apig_error)conn->error;
    conn_reject(conn, error, conn->error_arg[0] ? conn->error_arg : NULL);
    return;
  }
  const char *reason = llhttp_get_error_reason(&conn->parser);
  if (err == HPE_CLOSED_CONNECTION || !reason)
    reason = llhttp_errno_name(err);
  conn_reject(conn, APIG_E_BAD_REQUEST, reason);
}

/* Parses data until it ends or a request must be handled first. Returns
 * how many bytes were used; the caller keeps the rest. */
static size_t conn_parse(http_conn *conn, const char *data, size_t len) {
  size_t done = 0;

  while (done < len && !conn_blocked(conn)) {
    if (conn->phase == PHASE_IDLE) {
      conn->phase = PHASE_RECEIVING;
      conn_start_timer(conn, conn_on_request_timeout,
                       conn->server->limits.request_timeout_ms);
    }
    conn->scan = data + done;
    conn->error = -1;
    llhttp_errno_t err = llhttp_execute(&conn->parser, data + done,
                                        len - done);
    if (err == HPE_OK) {
      if (conn_count_header_bytes(conn, data + len) != 0)
        conn_reject_parse_error(conn, err);
      return len;
    }
    if (err != HPE_PAUSED) {
      conn_reject_parse_error(conn, err);
      return len;
    }
    done = (size_t)(llhttp_get_error_pos(&conn->parser) - data);
    llhttp_resume(&conn->parser);
    conn->scan = NULL;
    conn_dispatch(conn);
  }
  return done;
}

/* Parses the bytes kept while a response was pending, then reads again. */
static void conn_continue(http_conn *conn) {
  if (conn_blocked(conn) || conn->finishing)
    return;

  if (conn->pending) {
    size_t left = conn->pending_len - conn->pending_off;
    conn->pending_off +=
        conn_parse(conn, conn->pending + conn->pending_off, left);
    if (conn->pending_off < conn->pending_len && !conn->finishing &&
        !conn->closing)
      return;
    apig_free(conn->pending);
    conn->pending = NULL;
    conn->pending_len = conn->pending_off = 0;
  }
  if (conn->finishing || conn->closing || conn_blocked(conn))
    return; /* the next queued response calls this again */
  if (conn->read_eof)
    conn_finish(conn);
  else
    conn_read_start(conn);
}

/* ---- Reading ------------------------------------------------------------ */

static void conn_on_alloc(uv_handle_t *handle, size_t suggested,
                          uv_buf_t *buf) {
  http_conn *conn = handle->data;
  buf->base = conn->server->read_buffer;
  buf->len = sizeof conn->server->read_buffer;
}

/* Keeps unparsed input after any kept before, because the shared read
 * buffer is reused by the next read. */
static void conn_keep_pending(http_conn *conn, const char *data, size_t len) {
  size_t earlier = conn->pending_len - conn->pending_off;
  char *joined = apig_malloc(earlier + len);
  if (!joined) {
    conn_close(conn);
    return;
  }
  if (earlier)
    memcpy(joined, conn->pending + conn->pending_off, earlier);
  memcpy(joined + earlier, data, len);
  apig_free(conn->pending);
  conn->pending = joined;
  conn->pending_len = earlier + len;
  conn->pending_off = 0;
}

/* Whether to go on reading while the connection waits. During a journal
 * flush it does, up to PENDING_MAX bytes kept: stopping and restarting
 * would cost two epoll_ctl calls for each durable request. */
static int conn_reads_while_blocked(const http_conn *conn) {
  return conn->phase == PHASE_WAITING && !conn->write_blocked &&
         !conn->finishing && !conn->closing &&
         conn->pending_len - conn->pending_off <= PENDING_MAX;
}

static void conn_on_eof(http_conn *conn) {
  conn->read_eof = 1;
  conn_read_stop(conn);
  if (conn->lingering) {
    conn_close(conn);
    return;
  }
  /* Requests already read still get a response; a partial one is dropped. */
  if (conn->phase != PHASE_WAITING && !conn->write_blocked &&
      !conn->pending)
    conn_finish(conn);
}

/* Parses new input, or keeps it while the connection waits (see
 * conn_reads_while_blocked). Input after the last response is dropped. */
static void conn_on_data(http_conn *conn, const char *data, size_t len) {
  if (conn->finishing || conn->closing)
    return;
  if (conn_blocked(conn) || conn->pending) {
    /* Kept in order behind any earlier input, parsed once the pending
     * response is queued. */
    conn_keep_pending(conn, data, len);
    if (!conn_blocked(conn))
      conn_continue(conn);
    else if (!conn_reads_while_blocked(conn))
      conn_read_stop(conn);
    return;
  }
  size_t used = conn_parse(conn, data, len);
  if (conn->finishing || conn->closing || !conn_blocked(conn))
    return;
  if (used < len)
    conn_keep_pending(conn, data + used, len - used);
  /* Read no more until the pending response is queued, except during a
   * journal flush. */
  if (!conn_reads_while_blocked(conn))
    conn_read_stop(conn);
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf) {
  http_conn *conn = stream->data;
  const apig_allocator *previous = apig_alloc_enter(conn->server->allocator);

  if (nread > 0 && !conn->lingering) {
    conn_on_data(conn, buf->base, (size_t)nread);
  } else if (nread == UV_EOF) {
    conn_on_eof(conn);
  } else if (nread < 0) {
    conn_close(conn);
  }
  apig_alloc_leave(previous);
}

/* ---- Accepting ---------------------------------------------------------- */

static void format_peer(const struct sockaddr_storage *addr, char *out,
                        size_t size) {
  char ip[INET6_ADDRSTRLEN] = "";

  if (addr->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
    uv_ip6_name(in6, ip, sizeof ip);
    snprintf(out, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else if (addr->ss_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)addr;
    uv_ip4_name(in4, ip, sizeof ip);
    snprintf(out, size, "%s:%u", ip, ntohs(in4->sin_port));
  } else {
    snprintf(out, size, "unknown");
  }
}

static void on_rejected_closed(uv_handle_t *handle) {
  apig_http_server *server = handle->data;
  const apig_allocator *previous = apig_alloc_enter(server->allocator);

  apig_free(handle);
  server->rejecting--;
  server_free_if_stopped(server);
  apig_alloc_leave(previous);
}

/* Accepts and closes at once a connection over the limit, so it does not
 * wait in the backlog. The warning is rate-limited. */
static void server_reject_connection(apig_http_server *server) {
  uv_tcp_t *tcp = apig_malloc(sizeof *tcp);
  if (!tcp)
    return;
  uv_tcp_init(server->loop, tcp);
  tcp->data = server;
  uv_accept((uv_stream_t *)&server->listener, (uv_stream_t *)tcp);
  server->rejecting++;
  uv_close((uv_handle_t *)tcp, on_rejected_closed);

  server->rejected++;
  uint64_t now = uv_now(server->loop);
  if (server->reject_logged_ms == 0 ||
      now - server->reject_logged_ms >= REJECT_LOG_INTERVAL_MS) {
    apig_logf(server_logger(server), APIG_LOG_WARN, "",
              "closed %u new connections: limit of %u open connections "
              "reached", server->rejected, server->limits.max_connections);
    server->rejected = 0;
    server->reject_logged_ms = now ? now : 1;
  }
}

static http_conn *conn_new(apig_http_server *server) {
  http_conn *conn = apig_calloc(1, sizeof *conn);
  if (!conn)
    return NULL;
  conn->server = server;
  conn->error = -1;
  llhttp_init(&conn->parser, HTTP_REQUEST, &parser_settings);
  conn->parser.data = conn;
  uv_tcp_init(server->loop, &conn->tcp);
  uv_timer_init(server->loop, &conn->timer);
  conn->tcp.data = conn;
  conn->timer.data = conn;
  conn->open_handles = 2;

  conn->next = server->conns;
  if (server->conns)
    server->conns->prev = conn;
  server->conns = conn;
  server->conn_count++;
  return conn;
}

static void conn_start(http_conn *conn) {
  struct sockaddr_storage addr;
  int len = sizeof addr;

  snprintf(conn->peer, sizeof conn->peer, "unknown");
  if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &len) == 0)
    format_peer(&addr, conn->peer, sizeof conn->peer);
  uv_tcp_nodelay(&conn->tcp, 1);
  conn_set_idle(conn);
  conn_read_start(conn);
}

static void server_on_connection(uv_stream_t *listener, int status) {
  apig_http_server *server = listener->data;
  const apig_allocator *previous = apig_alloc_enter(server->allocator);

  if (status < 0) {
    apig_logf(server_logger(server), APIG_LOG_WARN, "",
              "accepting a connection failed: %s", uv_strerror(status));
  } else if (server->conn_count >= server->limits.max_connections) {
    server_reject_connection(server);
  } else {
    http_conn *conn = conn_new(server);
    if (!conn)
      server_reject_connection(server);
    else if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0)
      conn_close(conn);
    else
      conn_start(conn);
  }
  apig_alloc_leave(previous);
}

/* ---- Starting and stopping ---------------------------------------------- */

static int set_error(char **errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Stores a formatted message in *errmsg (when not NULL); returns -1. */
static int set_error(char **errmsg, const char *fmt, ...) {
  va_list ap;

  if (!errmsg)
    return -1;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  *errmsg = len < 0 ? NULL : apig_malloc((size_t)len + 1);
  if (*errmsg) {
    va_start(ap, fmt);
    vsnprintf(*errmsg, (size_t)len + 1, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Parses "HOST:PORT" or "[V6]:PORT" with a numeric IP address. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *port_text;
  size_t host_len;
  int v6 = listen[0] == '[';

  if (v6) {
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':')
      return -1;
    host_len = (size_t)(close - listen - 1);
    port_text = close + 2;
    listen++;
  } else {
    const char *colon = strrchr(listen, ':');
    if (!colon)
      return -1;
    host_len = (size_t)(colon - listen);
    port_text = colon + 1;
  }
  if (host_len == 0 || host_len >= sizeof host)
    return -1;
  memcpy(host, listen, host_len);
  host[host_len] = '\0';

  size_t digits = strspn(port_text, "0123456789");
  if (digits == 0 || digits > 5 || port_text[digits] != '\0')
    return -1;
  int port = atoi(port_text);
  if (port > 65535)
    return -1;
  if (v6)
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr);
  return uv_ip4_addr(host, port, (struct sockaddr_in *)addr);
}

static void on_listener_closed(uv_handle_t *handle) {
  apig_http_server *server = handle->data;
  const apig_allocator *previous = apig_alloc_enter(server->allocator);

  server->listener_closed = 1;
  server_free_if_stopped(server);
  apig_alloc_leave(previous);
}

static int server_listen(apig_http_server *server,
                         const struct sockaddr_storage *addr) {
  struct sockaddr_storage bound;
  int len = sizeof bound;
  int rc = uv_tcp_bind(&server->listener, (const struct sockaddr *)addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&server->listener, LISTEN_BACKLOG,
                   server_on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&server->listener, (struct sockaddr *)&bound,
                            &len);
  if (rc != 0)
    return rc;
  if (bound.ss_family == AF_INET6)
    server->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  else
    server->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  return 0;
}

int apig_http_start(apig_t *apig, uv_loop_t *loop, const char *listen,
                    const apig_http_limits *limits, apig_http_server **out,
                    char **errmsg) {
  struct sockaddr_storage addr;

  *out = NULL;
  memset(&addr, 0, sizeof addr);
  if (!listen || parse_listen(listen, &addr) != 0)
    return set_error(errmsg,
                     "invalid listen address \"%s\": expected IP:PORT or "
                     "[IPV6]:PORT with a port from 0 to 65535",
                     listen ? listen : "(null)");

  apig_http_server *server = apig_calloc(1, sizeof *server);
  if (!server)
    return set_error(errmsg, "listening on %s failed: out of memory",
                     listen);
  server->apig = apig;
  server->loop = loop;
  server->allocator = current_allocator();
  if (limits)
    server->limits = *limits;
  else
    apig_http_limits_init(&server->limits);

  uv_tcp_init(loop, &server->listener);
  server->listener.data = server;
  int rc = server_listen(server, &addr);
  if (rc != 0) {
    /* The handle frees the server once the loop runs its close. */
    server->stopping = 1;
    uv_close((uv_handle_t *)&server->listener, on_listener_closed);
    return set_error(errmsg, "listening on %s failed: %s", listen,
                     uv_strerror(rc));
  }
  *out = server;
  return 0;
}

void apig_http_stop(apig_http_server *server, void (*on_stopped)(void *arg),
                    void *arg) {
  const apig_allocator *previous = apig_alloc_enter(server->allocator);

  server->stopping = 1;
  server->on_stopped = on_stopped;
  server->stop_arg = arg;
  uv_close((uv_handle_t *)&server->listener, on_listener_closed);

  /* Connections with a request under way close after their response, which
   * carries "Connection: close". */
  for (http_conn *conn = server->conns; conn; conn = conn->next) {
    /* A request still arriving gets a short grace, so that a slow client
     * cannot hold the stop for the whole request timeout. */
    if (conn->phase == PHASE_RECEIVING && !conn->closing &&
        uv_timer_get_due_in(&conn->timer) > STOP_GRACE_MS)
      conn_start_timer(conn, conn_on_request_timeout, STOP_GRACE_MS);
    if (conn->phase != PHASE_IDLE || conn->closing)
      continue;
    if (conn->writes > 0)
      conn_finish(conn);
    else
      conn_close(conn);
  }
  apig_alloc_leave(previous);
}

unsigned apig_http_connection_count(const apig_http_server *server) {
  return server->conn_count;
}

int apig_http_port(const apig_http_server *server) { return server->port; }
