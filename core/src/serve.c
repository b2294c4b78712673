/* apig_serve: HTTP, background journal work and the policy watch of one
 * handle, on a libuv loop that the host owns. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "alloc.h"
#include "apig_impl.h"
#include "http.h"
#include "policy_watch.h"

struct apig_server {
  apig_t *apig;
  uv_loop_t *loop;
  apig_http_server *http;
  int watching; /* the policy watch runs */
  int stopping;
  void (*on_stopped)(void *arg);
  void *stop_arg;
};

void apig_serve_options_init(apig_serve_options *options) {
  memset(options, 0, sizeof *options);
}

/* Stores a malloc'd message for the host (see apig_string_free). */
static int fail(char **errmsg, const char *fmt, const char *detail) {
  if (errmsg) {
    char text[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(text, sizeof text, fmt, detail);
#pragma GCC diagnostic pop
    *errmsg = strdup(text);
  }
  return -1;
}

static apig_http_limits http_limits(const apig_serve_options *opts) {
  apig_http_limits limits;
  apig_http_limits_init(&limits);
  if (!opts)
    return limits;
  if (opts->max_header_bytes)
    limits.max_header_bytes = opts->max_header_bytes;
  if (opts->request_timeout_ms)
    limits.request_timeout_ms = opts->request_timeout_ms;
  if (opts->idle_timeout_ms)
    limits.idle_timeout_ms = opts->idle_timeout_ms;
  if (opts->max_connections)
    limits.max_connections = opts->max_connections;
  return limits;
}

static int start_http(apig_server *server, const char *listen,
                      const apig_serve_options *opts, char **errmsg) {
  apig_http_limits limits = http_limits(opts);
  char *http_error = NULL;
  if (apig_http_start(server->apig, server->loop, listen, &limits,
                      &server->http, &http_error) == 0)
    return 0;
  fail(errmsg, "%s", http_error ? http_error : "listening failed");
  apig_free(http_error);
  return -1;
}

/* Starts the policy watch; a watch that fails is logged by
 * apig_policy_watch_start and SIGHUP-style reloads still work. */
static void start_watch(apig_server *server, const apig_serve_options *opts) {
  apig_t *apig = server->apig;
  if (!apig->policy_file || (opts && opts->no_policy_watch))
    return;
  server->watching = apig_policy_watch_start(apig, server->loop) == 0;
}

int apig_listen_is_loopback(const char *listen) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *end = listen[0] == '[' ? strchr(listen, ']')
                                     : strrchr(listen, ':');
  const char *start = listen[0] == '[' ? listen + 1 : listen;
  if (!end || end < start || (size_t)(end - start) >= sizeof host)
    return 0;
  memcpy(host, start, (size_t)(end - start));
  host[end - start] = '\0';
  struct in_addr v4;
  struct in6_addr v6;
  if (listen[0] != '[' && inet_pton(AF_INET, host, &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  if (listen[0] == '[' && inet_pton(AF_INET6, host, &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6) ||
           (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return 0;
}

int apig_serve(apig_t *apig, struct uv_loop_s *loop, const char *listen,
               const apig_serve_options *opts, apig_server **out,
               char **errmsg) {
  if (errmsg)
    *errmsg = NULL;
  if (out)
    *out = NULL;
  if (!apig || !loop || !listen || !out)
    return fail(errmsg, "apig_serve: %s must not be NULL",
                !apig ? "apig" : !loop ? "loop" : !listen ? "listen" : "out");
  if (apig->server)
    return fail(errmsg, "apig_serve: %s",
                "the handle is serving already; stop that server first");
  if (!apig->credentials && !(opts && opts->allow_remote) &&
      !apig_listen_is_loopback(listen))
    return fail(errmsg,
                "apig_serve: refusing to listen on %s in development mode, "
                "where any token is accepted; load credentials or allow "
                "remote addresses explicitly",
                listen);
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  apig_server *server = apig_calloc(1, sizeof *server);
  int rc = -1;
  if (!server) {
    fail(errmsg, "apig_serve: %s", "out of memory");
  } else {
    server->apig = apig;
    server->loop = loop;
    rc = start_http(server, listen, opts, errmsg);
  }
  if (rc == 0) {
    if (apig->persist)
      apig_persist_attach(apig->persist, loop, &apig->store);
    start_watch(server, opts);
    apig->server = server;
    *out = server;
  } else {
    apig_free(server);
  }
  apig_alloc_leave(previous);
  return rc;
}

int apig_server_port(const apig_server *server) {
  return server ? apig_http_port(server->http) : -1;
}

/* Runs once the HTTP server has answered every request in flight and
 * closed its connections. */
static void on_http_stopped(void *arg) {
  apig_server *server = arg;
  apig_t *apig = server->apig;
  const apig_allocator *previous = apig_alloc_enter(apig->allocator);
  if (server->watching)
    apig_policy_watch_stop(apig);
  if (apig->persist)
    apig_persist_attach(apig->persist, NULL, NULL);
  apig->server = NULL;
  void (*on_stopped)(void *) = server->on_stopped;
  void *stop_arg = server->stop_arg;
  apig_free(server);
  apig_alloc_leave(previous);
  if (on_stopped)
    on_stopped(stop_arg);
}

int apig_serve_stop(apig_server *server, void (*cb)(void *arg), void *arg) {
  if (!server || server->stopping)
    return -1;
  server->stopping = 1;
  server->on_stopped = cb;
  server->stop_arg = arg;
  apig_http_stop(server->http, on_http_stopped, server);
  return 0;
}
