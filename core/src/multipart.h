/* multipart/form-data bodies (RFC 7578), as the official SDKs send files. */
#ifndef APIG_MULTIPART_H
#define APIG_MULTIPART_H

#include <stddef.h>

#define APIG_FORM_NAME_MAX 128
#define APIG_BOUNDARY_MAX 70 /* RFC 2046 */

/* One part of a form. data borrows the body passed to the parser. */
typedef struct apig_form_part {
  char name[APIG_FORM_NAME_MAX]; /* the name of its Content-Disposition */
  const char *data;
  size_t len;
} apig_form_part;

/* Reads a parameter of a header value such as `form-data; name="x"` or
 * `multipart/form-data; boundary=abc`: the name matches case-insensitively,
 * the value is a token or a quoted string (backslash escapes undone).
 * Returns 1 and the value in out, 0 when absent, -1 when the value is
 * malformed or does not fit in size bytes. */
int apig_header_param(const char *value, size_t len, const char *param,
                      char *out, size_t size);

/* Does the Content-Type value name multipart/form-data? */
int apig_is_multipart(const char *value, size_t len);

/* Splits body into its parts, in order: at most max, each with its name.
 * Delimiter lines may end in CRLF or a bare LF; a preamble before the
 * first delimiter and an epilogue after the last are ignored. Returns the
 * number of parts, or -1 with a one-line reason in err (no delimiter, no
 * closing delimiter, a part without Content-Disposition name, too many
 * parts). */
long apig_multipart_parse(const char *body, size_t len, const char *boundary,
                          apig_form_part *parts, size_t max, char *err,
                          size_t err_size);

#endif
