/* Internal interfaces shared by the parts of libapig. */
#ifndef APIG_CORE_H
#define APIG_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "apig.h"
#include "buf.h"
#include "util.h"

/* Log sink of a handle; the library itself never writes to stderr. */
typedef struct apig_logger {
  apig_log_fn fn;
  void *ud;
  apig_log_level level;
  void (*flush)(void *ud); /* NULL: nothing to flush */
} apig_logger;

/* Lets the host write out the log lines it buffers. */
void apig_log_flush(const apig_logger *logger);

void apig_logf(const apig_logger *logger, apig_log_level level,
               const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void apig_vlogf(const apig_logger *logger, apig_log_level level,
                const char *request_id, const char *fmt, va_list ap);

/* One request, as the HTTP layer or apig_request hands it over. Every
 * pointer is borrowed for the duration of apig_dispatch. */
typedef struct apig_req {
  const char *method; /* NUL-terminated, upper case as received */
  const char *target; /* request-target: path and optional "?query" */
  size_t target_len;
  const apig_header *headers;
  size_t header_count;
  const char *body;
  size_t body_len;
  const char *peer; /* "127.0.0.1:5555" or "" in process; for logs */
} apig_req;

/* One answer. `body` is empty for 204. The HTTP layer adds Content-Length
 * and Connection; everything else comes from apig_reply_headers. */
typedef struct apig_reply {
  int status;
  apig_buf body;
  char request_id[APIG_ID_LEN + 1];
  char allow[40];       /* Allow header value for 405, or "" */
  const char *content_type; /* NULL: JSON when the body is not empty */
  uint64_t durable_seq; /* >0: send only once the journal reached it */
} apig_reply;

void apig_reply_init(apig_reply *reply);
void apig_reply_free(apig_reply *reply);

/* Fills reply with the error body of `error`; args fill the template. */
void apig_reply_error(apig_reply *reply, apig_error error, ...);

/* Formats the message of `error` into out (at most size bytes). */
void apig_error_vformat(char *out, size_t size, apig_error error,
                        va_list ap);
void apig_error_format(char *out, size_t size, apig_error error, ...);

/* Header lines of a reply other than Content-Length and Connection, as
 * name/value pairs; returns how many were written (at most 4). Values point
 * into reply or static storage. */
size_t apig_reply_headers(const apig_reply *reply, apig_header out[4]);

/* Runs a request against the handle: routing, authentication, handlers.
 * Always fills reply (status, body, request id). */
void apig_dispatch(apig_t *apig, const apig_req *req, apig_reply *reply);

/* Returns the body limit in bytes for a request to `path` (the path only,
 * before any '?'), so the HTTP layer can reject a body before reading it. */
size_t apig_body_limit(const apig_t *apig, const char *path, size_t len);

/* Calls cb(arg, 0) once journal record `seq` is on disk, or cb(arg, -1) if
 * flushing it failed. May call cb before returning when it already is. */
typedef void (*apig_durable_cb)(void *arg, int status);
void apig_durable_wait(apig_t *apig, uint64_t seq, apig_durable_cb cb,
                       void *arg);

const apig_logger *apig_get_logger(const apig_t *apig);

/* Finds a header by name, case-insensitively. Returns the number of times
 * it occurs and stores the first occurrence in *first (when not NULL). */
size_t apig_find_header(const apig_header *headers, size_t count,
                        const char *name, const apig_header **first);

#endif
