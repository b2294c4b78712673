/* libapig: batch publish and take offline of APIs, in process or over HTTP.
 *
 * One apig_t handle holds the whole product: instances and their state, the
 * journal and snapshots in a data folder, the Lua policy and credentials.
 * A handle is used from one thread at a time. Handles share nothing, so
 * several may live in one process.
 *
 * Ownership: strings passed in are borrowed for the duration of the call
 * and copied when kept, unless a comment says otherwise. Results returned
 * through out-parameters belong to the caller, who frees them with the
 * matching *_free function; every *_free accepts NULL. Every allocation of
 * the library, results included, comes from the handle's allocator.
 */
#ifndef APIG_H
#define APIG_H

#include <stddef.h>
#include <stdint.h>

#include "apig_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions that libapig.so exports; everything else in the
 * shared library is hidden. */
#if defined(__GNUC__)
#define APIG_API __attribute__((visibility("default")))
#else
#define APIG_API
#endif

/* libuv's loop type, declared here so this header does not need uv.h.
 * It is the same type as uv_loop_t. */
struct uv_loop_s;

#define APIG_VERSION_MAJOR 0
#define APIG_VERSION_MINOR 1
#define APIG_VERSION_PATCH 0
#define APIG_VERSION_STRING "0.1.0"
#define APIG_VERSION_NUMBER                                                   \
  (APIG_VERSION_MAJOR * 10000 + APIG_VERSION_MINOR * 100 + APIG_VERSION_PATCH)

/* Returns APIG_VERSION_NUMBER of the library actually linked. */
APIG_API unsigned apig_version(void);
/* Returns APIG_VERSION_STRING of the library actually linked (static). */
APIG_API const char *apig_version_string(void);

/* The handle. Opaque: only apig_open makes one, only apig_close frees it. */
typedef struct apig apig_t;

/* A host allocator. realloc(ud, NULL, n) allocates, realloc(ud, p, 0) frees
 * and returns NULL, anything else resizes; NULL return means failure. */
typedef struct apig_allocator {
  void *(*realloc)(void *ud, void *ptr, size_t size);
  void *ud;
} apig_allocator;

typedef enum apig_log_level {
  APIG_LOG_DEBUG,
  APIG_LOG_INFO,
  APIG_LOG_WARN,
  APIG_LOG_ERROR
} apig_log_level;

/* One log event. All strings are borrowed for the duration of the call;
 * request_id is "" outside a request. */
typedef struct apig_log_event {
  apig_log_level level;
  int64_t time_ns;
  const char *request_id;
  const char *message;
} apig_log_event;

/* Receives every log event at or above the handle's level. The library
 * writes nothing to stdout or stderr by itself. */
typedef void (*apig_log_fn)(void *ud, const apig_log_event *event);

typedef enum apig_fsync_mode { APIG_FSYNC_ALWAYS, APIG_FSYNC_OFF } apig_fsync_mode;

/* Options of apig_open. Zero every field (apig_options_init does), then set
 * what you need; a zero or NULL field takes the documented default. */
typedef struct apig_options {
  const char *data_dir;  /* NULL: no persistence, state lives in memory */
  const char **instances; /* "PROJECT_ID:INSTANCE_ID" strings */
  size_t instance_count;  /* 0: no instance is created */
  const char *policy_file;      /* NULL: no policy */
  const char *credentials_file; /* NULL: development mode */
  uint64_t policy_budget;       /* VM instructions per hook; 1000000 */
  size_t policy_memory;         /* bytes for the Lua state; 64 MiB */
  size_t max_body;              /* bytes for JSON calls; 1 MiB */
  size_t max_import_body;       /* bytes for OpenAPI import; 16 MiB */
  unsigned group_api_quota;     /* APIs per group; 1000 */
  unsigned env_quota;           /* environments besides RELEASE; 10 */
  apig_fsync_mode fsync_mode;   /* APIG_FSYNC_ALWAYS */
  uint64_t snapshot_interval_ms; /* 0: 3600000 (one hour) */
  uint64_t journal_max_bytes;    /* 0: 64 MiB; a larger journal is
                                    compacted by a snapshot */
  const apig_allocator *allocator; /* NULL: the C library's; borrowed, must
                                      outlive the handle */
  apig_log_fn log;     /* NULL: nothing is logged */
  void *log_ud;
  apig_log_level log_level; /* lowest level passed to log; APIG_LOG_INFO */
  /* NULL: none. Called with log_ud just before and just after the server
   * writes a response, so a host that buffers log lines can write them
   * out: lines logged before a response then reach the log first. */
  void (*log_flush)(void *ud);
} apig_options;

/* Zeroes options and sets log_level to APIG_LOG_INFO. */
APIG_API void apig_options_init(apig_options *options);

/* Opens a handle: loads the newest snapshot and the journal from data_dir,
 * creates the listed instances when missing, loads the policy and the
 * credentials. Every string of options is copied; the allocator is
 * borrowed. Returns NULL on failure (NULL options included) and, when
 * errmsg is not NULL, stores a message there that the caller frees with
 * apig_string_free, or NULL when even the message could not be allocated.
 * A failed open leaves nothing allocated. */
APIG_API apig_t *apig_open(const apig_options *options, char **errmsg);

/* Writes a final snapshot (when persistent) and frees the handle. Does
 * nothing for NULL. A handle that is still serving (see apig_serve) is not
 * freed: the call logs an error and returns -1, so stop the server first.
 * Returns 0 once the handle is freed; the pointer is then invalid, and a
 * second apig_close on it is undefined, as with free(). */
APIG_API int apig_close(apig_t *apig);

/* Frees a string the library returned (error messages). NULL is allowed. */
APIG_API void apig_string_free(char *s);

/* A header of a request or an answer. */
typedef struct apig_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} apig_header;

/* An answer, owned by the caller: free with apig_response_free. */
typedef struct apig_response {
  int status;
  apig_header *headers; /* names and values live inside the response */
  size_t header_count;
  char *body; /* NUL-terminated for convenience; body_len excludes it */
  size_t body_len;
} apig_response;

/* Frees a response of apig_request. NULL is allowed. */
APIG_API void apig_response_free(apig_response *response);

/* Runs one request in process, exactly as the server would answer it:
 * method ("GET"), target (path and query as on the request line), headers,
 * body. Everything passed in is borrowed for the call. Returns 0 and stores
 * the answer in *out (an error answer such as 404 included), or -1 with
 * *out NULL when no answer could be made: a NULL handle, method, target or
 * out, headers NULL with header_count > 0, body NULL with body_len > 0,
 * an allocation failure, or a handle that is serving (see apig_serve),
 * which answers only over HTTP. Changes are durable when this returns 0
 * with a 2xx status, as with the server's 200; a change is applied whole
 * or not at all, even when allocating the answer fails after it was
 * applied. */
APIG_API int apig_request(apig_t *apig, const char *method,
                          const char *target, const apig_header *headers,
                          size_t header_count, const char *body,
                          size_t body_len, apig_response **out);

/* Writes a snapshot now, synchronously. Returns 0, or -1 for a NULL or
 * in-memory handle or a failed write (logged). */
APIG_API int apig_snapshot(apig_t *apig);

/* Starts a snapshot in a child process when the handle serves on a loop
 * (a request while one runs is logged and folded into it), else writes one
 * now. Returns 0, or -1 for a NULL or in-memory handle or a snapshot that
 * could not start (logged); the outcome of a background one is logged. */
APIG_API int apig_snapshot_background(apig_t *apig);

/* ---- Batch publish and take offline, with typed results ---- */

typedef enum apig_batch_action {
  APIG_BATCH_ONLINE, /* publish */
  APIG_BATCH_OFFLINE /* take offline */
} apig_batch_action;

/* One batch: the fields of POST .../apis/publish?action=online|offline. */
typedef struct apig_batch_request {
  const char *project_id;  /* required */
  const char *instance_id; /* required */
  apig_batch_action action;
  const char *const *api_ids; /* at most 1000 ids, in order */
  size_t api_count;
  const char *group_id; /* NULL: none; with ids, the ids must be in it */
  const char *env_id;   /* NULL: left out (for a policy that maps it) */
  const char *remark;   /* NULL: left out */
  const char *token;    /* X-Auth-Token sent with the call; NULL sends
                           "embedded", which only development mode (no
                           credentials file) accepts */
} apig_batch_request;

/* One item of a batch answer. Fields that do not apply are NULL: a success
 * has no error_code or error_msg, an offline success has no publish_id,
 * publish_time or remark, a failure has only api_id, api_name (NULL when
 * the API does not exist), error_code and error_msg. */
typedef struct apig_batch_item {
  const char *api_id;
  const char *api_name;
  const char *env_id;
  const char *version_id; /* new (online) or taken offline */
  const char *publish_id;
  const char *publish_time; /* RFC 3339, UTC */
  const char *remark;
  const char *error_code; /* "APIG.3002" */
  const char *error_msg;
} apig_batch_item;

/* The answer to a batch, owned by the caller: free with
 * apig_batch_result_free. Every string lives inside the result. */
typedef struct apig_batch_result {
  int status; /* HTTP status: 200 when the batch ran */
  const char *request_id;
  const char *error_code; /* status != 200: the request-wide error */
  const char *error_msg;  /* status != 200, else NULL */
  apig_batch_item *success;
  size_t success_count;
  apig_batch_item *failure;
  size_t failure_count;
  const char *body; /* the JSON answer as the server sends it */
  size_t body_len;
} apig_batch_result;

/* Runs a batch in process through the same path as apig_request. Returns
 * 0 with the answer in *out, whatever its status (a request-wide error
 * such as 404 APIG.3003 is a result with status 404 and error_code set);
 * or -1 with *out NULL for invalid arguments (NULL handle, request, out,
 * project_id or instance_id; api_ids NULL with api_count > 0), an
 * allocation failure or a serving handle. As with apig_request, the batch is applied whole or
 * not at all. */
APIG_API int apig_batch(apig_t *apig, const apig_batch_request *request,
                        apig_batch_result **out);

/* apig_batch without group_id and token: publishes (APIG_BATCH_ONLINE) or
 * takes offline count APIs in env_id, with remark (NULL: none). */
APIG_API int apig_publish(apig_t *apig, const char *project_id,
                          const char *instance_id, apig_batch_action action,
                          const char *const *api_ids, size_t count,
                          const char *env_id, const char *remark,
                          apig_batch_result **out);

/* Frees a result of apig_batch or apig_publish. NULL is allowed. */
APIG_API void apig_batch_result_free(apig_batch_result *result);

/* ---- Serving HTTP on the host's libuv loop ---- */

/* A running HTTP server. Opaque: apig_serve makes one, and it frees itself
 * once apig_serve_stop has finished. */
typedef struct apig_server apig_server;

/* Options of apig_serve; a zero field takes the default. */
typedef struct apig_serve_options {
  size_t max_header_bytes;     /* request line plus headers; 16384 */
  uint64_t request_timeout_ms; /* from a request's first byte; 30000 */
  uint64_t idle_timeout_ms;    /* idle keep-alive connection; 60000 */
  unsigned max_connections;    /* open at once; 10000 */
  int no_policy_watch;         /* nonzero: do not reload the policy file
                                  when it changes */
  int allow_remote;            /* nonzero: allow an address outside
                                  loopback in development mode (no
                                  credentials), where any token passes */
} apig_serve_options;

/* Zeroes options. */
APIG_API void apig_serve_options_init(apig_serve_options *options);

/* Serves the handle over HTTP on loop, which the host owns and runs:
 * listens on `listen` ("127.0.0.1:8080", "[::1]:0"; port 0 picks a free
 * one), runs journal flushes and snapshots on the loop, and reloads the
 * policy when its file changes. A handle serves on one loop at a time.
 * opts NULL takes the defaults. Returns 0 with the server in *out, or -1
 * with *out NULL and, when errmsg is not NULL, a message there to free
 * with apig_string_free (a NULL argument, a handle already serving, a bad
 * address, an address outside loopback in development mode without
 * allow_remote, or a failed listen). A failed start may leave handles closing on
 * the loop: run the loop once more before closing it. */
APIG_API int apig_serve(apig_t *apig, struct uv_loop_s *loop,
                        const char *listen, const apig_serve_options *opts,
                        apig_server **out, char **errmsg);

/* Returns the bound port (the one chosen for port 0), or -1 for NULL. */
APIG_API int apig_server_port(const apig_server *server);

/* Stops serving: stops accepting, lets requests in flight finish and be
 * answered, closes every connection, stops the policy watch and detaches
 * the journal from the loop, then calls cb(arg) (when cb is not NULL) from
 * the loop and frees the server. The loop must run for this to finish.
 * Does nothing for NULL, and nothing for a server already stopping.
 * Returns 0 when it started the stop, -1 otherwise. */
APIG_API int apig_serve_stop(apig_server *server, void (*cb)(void *arg),
                             void *arg);

/* ---- The error table ---- */

/* Returns the code ("APIG.3002"), HTTP status and message template of an
 * error of the shared table. Strings are static. An error outside the
 * table returns the values of APIG_E_SYSTEM. */
APIG_API const char *apig_error_code(apig_error error);
APIG_API int apig_error_status(apig_error error);
APIG_API const char *apig_error_template(apig_error error);

#ifdef __cplusplus
}
#endif

#endif
