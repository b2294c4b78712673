/* Growable byte buffer. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void apig_buf_init(apig_buf *b) { memset(b, 0, sizeof *b); }

void apig_buf_free(apig_buf *b) {
  apig_free(b->data);
  memset(b, 0, sizeof *b);
}

void apig_buf_reset(apig_buf *b) {
  b->len = 0;
  b->failed = 0;
  if (b->data)
    b->data[0] = '\0';
}

int apig_buf_grow(apig_buf *b, size_t extra) {
  if (b->failed)
    return -1;
  if (extra > ((size_t)-1) / 2 - b->len) {
    b->failed = 1;
    return -1;
  }
  if (b->len + extra + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) {
    if (cap > ((size_t)-1) / 2) {
      b->failed = 1;
      return -1;
    }
    cap *= 2;
  }
  char *data = apig_realloc(b->data, cap);
  if (!data) {
    b->failed = 1;
    return -1;
  }
  b->data = data;
  b->cap = cap;
  return 0;
}

void apig_buf_put_uint(apig_buf *b, unsigned long long v) {
  char digits[20];
  size_t n = 0;
  do {
    digits[sizeof digits - ++n] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  apig_buf_append(b, digits + sizeof digits - n, n);
}

void apig_buf_vprintf(apig_buf *b, const char *fmt, va_list ap) {
  /* Formats into the room there is, and only when the text is longer
   * grows the buffer and formats again. */
  if (b->failed)
    return;
  size_t room = b->cap > b->len ? b->cap - b->len : 0;
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, copy);
  va_end(copy);
  if (n < 0) {
    if (room)
      b->data[b->len] = '\0';
    return;
  }
  if ((size_t)n < room) {
    b->len += (size_t)n;
    return;
  }
  if (apig_buf_reserve(b, (size_t)n) != 0) {
    if (room)
      b->data[b->len] = '\0'; /* undo the cut-off attempt */
    return;
  }
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void apig_buf_printf(apig_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  apig_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void apig_buf_json_string(apig_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (apig_buf_reserve(b, len + 2) != 0)
    return;
  apig_buf_putc(b, '"');
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    apig_buf_append(b, s + start, i - start);
    start = i + 1;
    switch (c) {
    case '"':
      apig_buf_append(b, "\\\"", 2);
      break;
    case '\\':
      apig_buf_append(b, "\\\\", 2);
      break;
    case '\n':
      apig_buf_append(b, "\\n", 2);
      break;
    case '\r':
      apig_buf_append(b, "\\r", 2);
      break;
    case '\t':
      apig_buf_append(b, "\\t", 2);
      break;
    default: {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      apig_buf_append(b, esc, 6);
    }
    }
  }
  apig_buf_append(b, s + start, len - start);
  apig_buf_putc(b, '"');
}

void apig_buf_json_cstr(apig_buf *b, const char *s) {
  if (!s) {
    apig_buf_append(b, "null", 4);
    return;
  }
  apig_buf_json_string(b, s, strlen(s));
}

char *apig_buf_steal(apig_buf *b, size_t *len) {
  if (apig_buf_reserve(b, 0) != 0) {
    apig_buf_free(b);
    return NULL;
  }
  char *data = b->data;
  if (len)
    *len = b->len;
  memset(b, 0, sizeof *b);
  return data;
}
