/* Strict JSON parsing on top of cJSON.
 *
 * cJSON alone accepts trailing data after the value, keeps only the part of
 * a string before an escaped NUL and does not check UTF-8. apig_json_parse
 * rejects all of these, and duplicate keys in any object, so a request body
 * means one thing only.
 */
#ifndef APIG_JSON_H
#define APIG_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses exactly one JSON value filling text[0..len). Returns the tree (free
 * with cJSON_Delete) or NULL with a one-line reason in err. Rejects: empty
 * input, data after the value (whitespace aside), nesting deeper than 512,
 * a key repeated in one object, "\u0000" or a raw NUL in a string, invalid
 * escapes, lone surrogates, and invalid UTF-8 anywhere. */
cJSON *apig_json_parse(const char *text, size_t len, char *err,
                       size_t err_size);

/* Returns 1 when text[0..len) passes the checks of apig_json_parse other
 * than the one for duplicate keys, else 0. Builds no tree. */
int apig_json_valid(const char *text, size_t len);

/* Does err, set by a failed apig_json_parse, say that memory ran out
 * rather than that the input is invalid? Such reasons start with
 * "out of memory". */
int apig_json_out_of_memory(const char *err);

#endif
