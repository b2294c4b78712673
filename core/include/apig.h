/* libapig: batch publish and take offline of APIs, in process or over HTTP.
 *
 * One apig_t handle holds the whole product: instances and their state, the
 * journal and snapshots in a data folder, the Lua policy and credentials.
 * A handle is used from one thread at a time. Handles share nothing, so
 * several may live in one process.
 *
 * Ownership: strings passed in are copied unless a comment says otherwise.
 * Results returned through out-parameters belong to the caller, who frees
 * them with the matching *_free function; every *_free accepts NULL.
 */
#ifndef APIG_H
#define APIG_H

#include <stddef.h>
#include <stdint.h>

#include "apig_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define APIG_VERSION_MAJOR 0
#define APIG_VERSION_MINOR 1
#define APIG_VERSION_PATCH 0
#define APIG_VERSION_STRING "0.1.0"
#define APIG_VERSION_NUMBER                                                   \
  (APIG_VERSION_MAJOR * 10000 + APIG_VERSION_MINOR * 100 + APIG_VERSION_PATCH)

/* Returns APIG_VERSION_NUMBER of the library actually linked. */
unsigned apig_version(void);
/* Returns APIG_VERSION_STRING of the library actually linked (static). */
const char *apig_version_string(void);

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
} apig_options;

void apig_options_init(apig_options *options);

/* Opens a handle: loads the newest snapshot and the journal from data_dir,
 * creates the listed instances when missing, loads the policy and the
 * credentials. Returns NULL on failure and, when errmsg is not NULL, stores
 * a message there that the caller frees with apig_string_free. */
apig_t *apig_open(const apig_options *options, char **errmsg);

/* Writes a final snapshot (when persistent) and frees the handle. Does
 * nothing for NULL. The handle must not be serving (see apig_serve_stop). */
void apig_close(apig_t *apig);

void apig_string_free(char *s);

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

void apig_response_free(apig_response *response);

/* Runs one request in process, exactly as the server would answer it:
 * method ("GET"), target (path and query as on the request line), headers,
 * body. Returns 0 and stores the answer in *out, or a negative value when no
 * answer could be made (allocation failure, invalid arguments). Changes are
 * durable when this returns, as with the server's 200. */
int apig_request(apig_t *apig, const char *method, const char *target,
                 const apig_header *headers, size_t header_count,
                 const char *body, size_t body_len, apig_response **out);

/* Writes a snapshot now, synchronously. Returns 0 or -1 (see the log). */
int apig_snapshot(apig_t *apig);

/* Returns the code ("APIG.3002"), HTTP status and message template of an
 * error of the shared table. Strings are static. */
const char *apig_error_code(apig_error error);
int apig_error_status(apig_error error);
const char *apig_error_template(apig_error error);

#ifdef __cplusplus
}
#endif

#endif
