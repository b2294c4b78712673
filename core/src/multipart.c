/* multipart/form-data parsing: delimiters, part headers and the name of
 * each part.
 *
 * A delimiter is "--" plus the boundary at the start of a line, followed
 * by "--" (the last one) or by optional spaces and a line end. Anything
 * else that starts with the boundary is part content.
 */
#include "multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_space(char c) { return c == ' ' || c == '\t'; }

static int is_token_char(char c) {
  return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Copies a quoted string starting at s[*i] == '"' into out, undoing
 * backslash escapes, and moves *i past the closing quote. */
static int read_quoted(const char *s, size_t len, size_t *i, char *out,
                       size_t size) {
  size_t n = 0;
  for ((*i)++; *i < len; (*i)++) {
    char c = s[*i];
    if (c == '"') {
      (*i)++;
      out[n] = '\0';
      return 0;
    }
    if (c == '\\' && *i + 1 < len)
      c = s[++*i];
    if (c == '\0' || n + 1 >= size)
      return -1;
    out[n++] = c;
  }
  return -1; /* no closing quote */
}

static int read_token(const char *s, size_t len, size_t *i, char *out,
                      size_t size) {
  size_t n = 0;
  while (*i < len && is_token_char(s[*i])) {
    if (n + 1 >= size)
      return -1;
    out[n++] = s[(*i)++];
  }
  out[n] = '\0';
  return n > 0 ? 0 : -1;
}

int apig_header_param(const char *value, size_t len, const char *param,
                      char *out, size_t size) {
  size_t plen = strlen(param);
  int in_quotes = 0;
  for (size_t i = 0; i < len; i++) {
    if (value[i] == '"')
      in_quotes = !in_quotes;
    if (value[i] == '\\' && in_quotes) {
      i++;
      continue;
    }
    if (value[i] != ';' || in_quotes)
      continue;
    size_t k = i + 1;
    while (k < len && is_space(value[k]))
      k++;
    if (len - k <= plen || strncasecmp(value + k, param, plen) != 0)
      continue;
    size_t j = k + plen;
    while (j < len && is_space(value[j]))
      j++;
    if (j >= len || value[j] != '=')
      continue;
    j++;
    while (j < len && is_space(value[j]))
      j++;
    if (j < len && value[j] == '"')
      return read_quoted(value, len, &j, out, size) == 0 ? 1 : -1;
    return read_token(value, len, &j, out, size) == 0 ? 1 : -1;
  }
  return 0;
}

int apig_is_multipart(const char *value, size_t len) {
  static const char type[] = "multipart/form-data";
  size_t n = sizeof type - 1;
  size_t i = 0;
  while (i < len && is_space(value[i]))
    i++;
  if (len - i < n || strncasecmp(value + i, type, n) != 0)
    return 0;
  i += n;
  while (i < len && is_space(value[i]))
    i++;
  return i == len || value[i] == ';';
}

/* Does a delimiter line start at body[at] (at the "--")? Sets *last when
 * it is the closing one and *next to the first byte after its line. */
static int delimiter_at(const char *body, size_t len, size_t at,
                        const char *dash, size_t dash_len, int *last,
                        size_t *next) {
  if (len - at < dash_len || memcmp(body + at, dash, dash_len) != 0)
    return 0;
  size_t i = at + dash_len;
  if (len - i >= 2 && body[i] == '-' && body[i + 1] == '-') {
    *last = 1;
    *next = len;
    return 1;
  }
  while (i < len && is_space(body[i]))
    i++;
  if (i < len && body[i] == '\r')
    i++;
  if (i >= len || body[i] != '\n')
    return 0;
  *last = 0;
  *next = i + 1;
  return 1;
}

/* Finds the next delimiter at or after `from`, which is a line start.
 * Returns the offset of its "--", and in *content_end where the content
 * before it ends (the line end before the delimiter excluded). */
static long find_delimiter(const char *body, size_t len, size_t from,
                           const char *dash, size_t dash_len, int *last,
                           size_t *next, size_t *content_end) {
  if (delimiter_at(body, len, from, dash, dash_len, last, next)) {
    *content_end = from;
    return (long)from;
  }
  for (size_t i = from; i < len;) {
    const char *nl = memchr(body + i, '\n', len - i);
    if (!nl)
      break;
    size_t at = (size_t)(nl - body) + 1;
    if (delimiter_at(body, len, at, dash, dash_len, last, next)) {
      size_t end = at - 1;
      if (end > from && body[end - 1] == '\r')
        end--;
      *content_end = end;
      return (long)at;
    }
    i = at;
  }
  return -1;
}

/* Reads the header lines of a part from body[*i], up to the empty line,
 * and stores the name of its Content-Disposition. */
static int read_part_headers(const char *body, size_t len, size_t *i,
                             apig_form_part *part, char *err,
                             size_t err_size) {
  static const char disposition[] = "content-disposition:";
  size_t dlen = sizeof disposition - 1;
  int named = 0;
  for (;;) {
    const char *nl = memchr(body + *i, '\n', len - *i);
    if (!nl) {
      snprintf(err, err_size, "multipart part headers do not end");
      return -1;
    }
    size_t start = *i, end = (size_t)(nl - body);
    *i = end + 1;
    if (end > start && body[end - 1] == '\r')
      end--;
    if (end == start)
      break;
    if (end - start > dlen &&
        strncasecmp(body + start, disposition, dlen) == 0) {
      int rc = apig_header_param(body + start + dlen, end - start - dlen,
                                 "name", part->name, sizeof part->name);
      if (rc < 0) {
        snprintf(err, err_size, "multipart part has an invalid name");
        return -1;
      }
      named = rc == 1;
    }
  }
  if (!named) {
    snprintf(err, err_size,
             "multipart part has no Content-Disposition name");
    return -1;
  }
  return 0;
}

long apig_multipart_parse(const char *body, size_t len, const char *boundary,
                          apig_form_part *parts, size_t max, char *err,
                          size_t err_size) {
  char dash[APIG_BOUNDARY_MAX + 3];
  size_t blen = strlen(boundary);
  if (blen == 0 || blen > APIG_BOUNDARY_MAX) {
    snprintf(err, err_size, "multipart boundary must be 1 to 70 characters");
    return -1;
  }
  snprintf(dash, sizeof dash, "--%s", boundary);
  size_t dash_len = blen + 2, next, content_end;
  int last = 0;
  if (find_delimiter(body, len, 0, dash, dash_len, &last, &next,
                     &content_end) < 0) {
    snprintf(err, err_size, "multipart body has no boundary line");
    return -1;
  }
  size_t count = 0;
  while (!last) {
    if (count == max) {
      snprintf(err, err_size, "multipart body has more than %zu parts", max);
      return -1;
    }
    apig_form_part *part = &parts[count];
    memset(part, 0, sizeof *part);
    size_t i = next;
    if (read_part_headers(body, len, &i, part, err, err_size) != 0)
      return -1;
    if (find_delimiter(body, len, i, dash, dash_len, &last, &next,
                       &content_end) < 0) {
      snprintf(err, err_size, "multipart body has no closing boundary");
      return -1;
    }
    part->data = body + i;
    part->len = content_end > i ? content_end - i : 0;
    count++;
  }
  return (long)count;
}
