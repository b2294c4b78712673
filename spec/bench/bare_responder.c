/* The throughput ceiling for the benchmarks: a libuv + llhttp server that
 * sends every request with the same small JSON body and does nothing
 * else. It uses the same loop and parser as apig-server, so the gap
 * between the two is the cost of the product itself.
 *
 * Usage: bare_responder [PORT]   (0 or none: a free port; the line
 * "listening on http://127.0.0.1:PORT" goes to stdout). SIGTERM or SIGINT
 * stop it.
 */
#include <llhttp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char answer[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json;charset=UTF-8\r\n"
    "Content-Length: 15\r\n"
    "\r\n"
    "{\"status\":\"ok\"}";
#define ANSWER_LEN (sizeof answer - 1)

static llhttp_settings_t settings;

typedef struct conn {
  uv_tcp_t tcp;
  llhttp_t parser;
  unsigned complete; /* requests parsed in the current read */
  int closing;
  char buffer[65536];
} conn;

typedef struct write_req {
  uv_write_t req;
  char data[];
} write_req;

static void on_closed(uv_handle_t *handle) { free(handle->data); }

static void conn_close(conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  free(req);
  (void)status;
}

/* Sends n answers: directly when the socket takes them, else queued. */
static void send_answers(conn *c, unsigned n) {
  size_t len = n * ANSWER_LEN;
  char stack[ANSWER_LEN * 16];
  char *out = len <= sizeof stack ? stack : malloc(len);
  if (!out) {
    conn_close(c);
    return;
  }
  for (unsigned i = 0; i < n; i++)
    memcpy(out + i * ANSWER_LEN, answer, ANSWER_LEN);
  uv_buf_t buf = uv_buf_init(out, (unsigned)len);
  int sent = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (sent < 0 && sent != UV_EAGAIN) {
    conn_close(c);
  } else if (sent < (int)len) {
    size_t rest = len - (sent > 0 ? (size_t)sent : 0);
    write_req *w = malloc(sizeof *w + rest);
    if (w) {
      memcpy(w->data, out + (len - rest), rest);
      uv_buf_t tail = uv_buf_init(w->data, (unsigned)rest);
      if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &tail, 1, on_written))
        free(w);
    }
  }
  if (out != stack)
    free(out);
}

static int on_message_complete(llhttp_t *parser) {
  conn *c = parser->data;
  c->complete++;
  return 0;
}

static void on_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf) {
  conn *c = handle->data;
  (void)size;
  *buf = uv_buf_init(c->buffer, sizeof c->buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn *c = stream->data;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->complete = 0;
  llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
  if (c->complete)
    send_answers(c, c->complete);
  if (err != HPE_OK)
    conn_close(c);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *handle, int signum) {
  (void)signum;
  uv_stop(handle->loop);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_message_complete;
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_init(loop, &server);
  int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
  if (rc != 0) {
    fprintf(stderr, "bare_responder: cannot listen on port %d: %s\n", port,
            uv_strerror(rc));
    return 1;
  }
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
  printf("listening on http://127.0.0.1:%d\n",
         ntohs(((struct sockaddr_in *)&bound)->sin_port));
  fflush(stdout);
  uv_signal_t sigterm, sigint;
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
