/* Growable byte buffer used to build answers, journal records and logs. */
#ifndef APIG_BUF_H
#define APIG_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

typedef struct apig_buf {
  char *data; /* always NUL-terminated when len > 0 or after any append */
  size_t len;
  size_t cap;
  int failed; /* set once an allocation failed; later appends do nothing */
} apig_buf;

void apig_buf_init(apig_buf *b);
void apig_buf_free(apig_buf *b);
void apig_buf_reset(apig_buf *b); /* keeps the allocation */

/* Grows the buffer to hold `extra` more bytes and a NUL; returns 0, or -1
 * once an allocation has failed. apig_buf_reserve is the fast path. */
int apig_buf_grow(apig_buf *b, size_t extra);

/* The appends below are inline because responses are built from many short
 * pieces, mostly string literals whose length is known at compile time. */
static inline int apig_buf_reserve(apig_buf *b, size_t extra) {
  if (!b->failed && b->len + extra + 1 <= b->cap && b->len + extra >= extra)
    return 0;
  return apig_buf_grow(b, extra);
}

static inline void apig_buf_append(apig_buf *b, const void *data,
                                   size_t len) {
  if (apig_buf_reserve(b, len) != 0)
    return;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

static inline void apig_buf_puts(apig_buf *b, const char *s) {
  apig_buf_append(b, s, strlen(s));
}

static inline void apig_buf_putc(apig_buf *b, char c) {
  apig_buf_append(b, &c, 1);
}
/* Appends the decimal digits of v. */
void apig_buf_put_uint(apig_buf *b, unsigned long long v);
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
