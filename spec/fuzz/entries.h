/* Fuzz entry points: each takes one input and runs it through a real code
 * path of libapig. The libFuzzer targets and the corpus replay test call
 * the same functions. Each returns 0; a bug shows as a crash, a sanitizer
 * report or an abort from a broken invariant.
 */
#ifndef APIG_FUZZ_ENTRIES_H
#define APIG_FUZZ_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

/* Bytes sent to a real apig_http server over a loopback connection, which
 * the client then shuts down for writing; the server's output is read
 * until it closes the connection. */
int fuzz_http_one(const uint8_t *data, size_t size);

/* The body of a batch call: apig_json_parse, then POST …/apis/publish
 * through apig_request. The first byte picks the query. In the body, "$0"
 * to "$9" become the ids of existing APIs, "$E" the id of an existing
 * environment and "$G" the id of their group. */
int fuzz_batch_one(const uint8_t *data, size_t size);

/* A request for apig_authenticate with configured credentials: lines of
 * method, raw path, raw query, then "Name: value" headers up to an empty
 * line, then the body. Also signs it with apig_sign and checks that the
 * signed request authenticates. */
int fuzz_auth_one(const uint8_t *data, size_t size);

/* An OpenAPI document, JSON or YAML: apig_openapi_parse, then an import
 * through apig_request into a new group. */
int fuzz_openapi_one(const uint8_t *data, size_t size);

/* The bytes as the only snapshot file, or as the only journal file, of a
 * fresh data folder that apig_open loads. */
int fuzz_snapshot_one(const uint8_t *data, size_t size);
int fuzz_journal_one(const uint8_t *data, size_t size);

#endif
