/* Growable byte buffer used to build answers, journal records and logs. */
#ifndef APIG_BUF_H
#define APIG_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct apig_buf {
  char *data; /* always NUL-terminated when len > 0 or after any append */
  size_t len;
  size_t cap;
  int failed; /* set once an allocation failed; later appends do nothing */
} apig_buf;

void apig_buf_init(apig_buf *b);
void apig_buf_free(apig_buf *b);
void apig_buf_reset(apig_buf *b); /* keeps the allocation */
int apig_buf_reserve(apig_buf *b, size_t extra);
void apig_buf_append(apig_buf *b, const void *data, size_t len);
void apig_buf_puts(apig_buf *b, const char *s);
void apig_buf_putc(apig_buf *b, char c);
void apig_buf_printf(apig_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void apig_buf_vprintf(apig_buf *b, const char *fmt, va_list ap);

/* Appends s as a JSON string literal, quotes included. The bytes must be
 * valid UTF-8; control characters, quotes and backslashes are escaped. */
void apig_buf_json_string(apig_buf *b, const char *s, size_t len);
void apig_buf_json_cstr(apig_buf *b, const char *s);

/* Detaches the data; the caller frees it with free(). */
char *apig_buf_steal(apig_buf *b, size_t *len);

#endif
