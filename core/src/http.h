/* HTTP/1.1 server over libuv and llhttp, responding through apig_dispatch. */
#ifndef APIG_HTTP_H
#define APIG_HTTP_H

#include <stdint.h>
#include <uv.h>

#include "core.h"

typedef struct apig_http_limits {
  size_t max_header_bytes;     /* request line plus headers; 16384 */
  uint64_t request_timeout_ms; /* from a request's first byte; 30000 */
  uint64_t idle_timeout_ms;    /* idle keep-alive connection; 60000 */
  unsigned max_connections;    /* open at once; 10000 */
} apig_http_limits;

void apig_http_limits_init(apig_http_limits *limits);

typedef struct apig_http_server apig_http_server;

/* Starts listening on `listen` ("127.0.0.1:8080", "[::1]:8080") on `loop`.
 * Returns 0, or -1 with a message in *errmsg (free with apig_free()). */
int apig_http_start(apig_t *apig, uv_loop_t *loop, const char *listen,
                    const apig_http_limits *limits, apig_http_server **out,
                    char **errmsg);

/* Stops accepting, lets requests in flight finish and be answered, closes
 * every connection, then calls on_stopped(arg) and frees the server. */
void apig_http_stop(apig_http_server *server, void (*on_stopped)(void *arg),
                    void *arg);

/* Connections open now (for metrics and tests). */
unsigned apig_http_connection_count(const apig_http_server *server);

/* Returns the bound port, the one the system chose when listening on 0. */
int apig_http_port(const apig_http_server *server);

#endif
