/* Authentication and permissions: IAM tokens, SDK-HMAC-SHA256 signatures,
 * development mode. */
#ifndef APIG_AUTH_H
#define APIG_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

enum {
  APIG_PERM_READ = 1,    /* GET calls */
  APIG_PERM_PUBLISH = 2, /* online, single publish, version switch */
  APIG_PERM_OFFLINE = 4, /* offline, single offline, version delete */
  APIG_PERM_MANAGE = 8   /* create, update, delete, import */
};

typedef struct apig_credentials apig_credentials;

/* Loads a credentials file:
 * {"tokens":[{"name","token","project_id","permissions":[...]}],
 *  "access_keys":[{"name","ak","sk","project_id","permissions":[...]}]}
 * Returns NULL with a message in *errmsg (free with apig_free()) that never
 * contains a secret. Logs a warning when the file is readable by others. */
apig_credentials *apig_credentials_load(const char *path,
                                        const apig_logger *logger,
                                        char **errmsg);
void apig_credentials_free(apig_credentials *credentials);

/* What a request is, for the authentication step. */
typedef struct apig_auth_request {
  const char *method;
  const char *raw_path; /* as received, before percent-decoding */
  size_t raw_path_len;
  const char *raw_query; /* after '?', as received; "" when none */
  size_t raw_query_len;
  const apig_header *headers;
  size_t header_count;
  const char *body;
  size_t body_len;
  const char *project_id; /* decoded from the path */
  unsigned permission;    /* one APIG_PERM_* the call needs */
  int64_t now_ns;
} apig_auth_request;

/* Authenticates and authorizes a request. credentials NULL means
 * development mode (any non-empty token, any AK/SK header unchecked).
 * Returns APIG_E_OK and the caller's name (token name or AK, never a
 * secret) in caller, or the error to answer with. */
apig_error apig_authenticate(const apig_credentials *credentials,
                             const apig_auth_request *request, char *caller,
                             size_t caller_size);

/* The SDK-HMAC-SHA256 signature of a request, 64 lowercase hex characters
 * and a NUL in out. signed_headers is the ';'-joined lower-case list;
 * content_sha256 overrides the body hash when not NULL. Returns 0 or -1. */
int apig_sign(const char *sk, const char *method, const char *raw_path,
              size_t raw_path_len, const char *raw_query,
              size_t raw_query_len, const apig_header *headers,
              size_t header_count, const char *signed_headers,
              const char *sdk_date, const char *body, size_t body_len,
              const char *content_sha256, char out[65]);

#endif
