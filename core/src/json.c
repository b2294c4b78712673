/* Strict JSON parsing: a validating scan, then cJSON, then a duplicate-key
 * check.
 *
 * The scan walks the bytes once, keeps the open containers on a fixed stack
 * of JSON_MAX_DEPTH bytes and never recurses, so no input can exhaust the
 * C stack. Once it passes, the input is RFC 8259 JSON with valid UTF-8, no
 * U+0000 and no lone surrogate. cJSON then only builds the tree, and the
 * tree walk that looks for duplicate keys recurses at most JSON_MAX_DEPTH
 * levels.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define JSON_MAX_DEPTH 512

/* cJSON before the fix for CVE-2023-26819 copies a number into a 64-byte
 * buffer and fails on longer ones. The scan rejects them itself, so every
 * cJSON build gives the same result and a clear message. */
#define JSON_MAX_NUMBER 63

/* Objects with more keys than this are checked by sorting their keys. */
#define JSON_PAIRWISE_KEYS 16

/* Bytes of a duplicate key quoted in the error message. */
#define JSON_KEY_SHOWN 64

static void set_error(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t err_size, const char *fmt, ...) {
  if (!err || err_size == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_size, fmt, ap);
  va_end(ap);
}

typedef struct scanner {
  const unsigned char *text;
  size_t len;
  size_t pos;
  char *err;
  size_t err_size;
} scanner;

static int unexpected_end(scanner *s) {
  set_error(s->err, s->err_size, "unexpected end of JSON input");
  return -1;
}

/* Reports the byte at `at`: printable ASCII as 'c', anything else in hex so
 * the message stays one line of ASCII. */
static int invalid_byte(scanner *s, size_t at, const char *context) {
  unsigned char c = s->text[at];
  if (c > 0x20 && c < 0x7f && c != '\'')
    set_error(s->err, s->err_size, "invalid character '%c' %s at offset %zu", c,
              context, at);
  else
    set_error(s->err, s->err_size, "invalid byte 0x%02X %s at offset %zu", c,
              context, at);
  return -1;
}

static void skip_whitespace(scanner *s) {
  while (s->pos < s->len) {
    unsigned char c = s->text[s->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return;
    s->pos++;
  }
}

/* Returns the length of the valid UTF-8 sequence starting at p, or 0. The
 * ranges are those of RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */
static size_t utf8_sequence_length(const unsigned char *p, size_t avail) {
  unsigned char lead = p[0];
  unsigned char low = 0x80, high = 0xBF;
  size_t n;

  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0)
      low = 0xA0;
    else if (lead == 0xED)
      high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0)
      low = 0x90;
    else if (lead == 0xF4)
      high = 0x8F;
  } else {
    return 0;
  }

  if (avail < n || p[1] < low || p[1] > high)
    return 0;
  for (size_t k = 2; k < n; k++)
    if ((p[k] & 0xC0) != 0x80)
      return 0;
  return n;
}

static int scan_hex4(scanner *s, size_t start, unsigned *out) {
  unsigned value = 0;
  for (size_t k = 0; k < 4; k++) {
    if (start + k >= s->len)
      return unexpected_end(s);
    unsigned char c = s->text[start + k];
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return invalid_byte(s, start + k, "in \\u hexadecimal character escape");
    value = value << 4 | digit;
  }
  *out = value;
  return 0;
}

static int lone_surrogate(scanner *s, unsigned unit, size_t at) {
  set_error(s->err, s->err_size, "lone surrogate \\u%04X at offset %zu", unit,
            at);
  return -1;
}

/* Checks a \u escape at *at (the backslash), together with the low half
 * when it is a high surrogate, and moves *at past it. */
static int scan_unicode_escape(scanner *s, size_t *at) {
  size_t i = *at;
  unsigned unit;

  if (scan_hex4(s, i + 2, &unit))
    return -1;
  if (unit == 0) {
    set_error(s->err, s->err_size, "string contains \\u0000 at offset %zu", i);
    return -1;
  }
  if (unit >= 0xDC00 && unit <= 0xDFFF)
    return lone_surrogate(s, unit, i);
  if (unit < 0xD800 || unit > 0xDBFF) {
    *at = i + 6;
    return 0;
  }

  size_t next = i + 6;
  if (next + 1 >= s->len)
    return unexpected_end(s);
  if (s->text[next] != '\\' || s->text[next + 1] != 'u')
    return lone_surrogate(s, unit, i);
  unsigned second;
  if (scan_hex4(s, next + 2, &second))
    return -1;
  if (second < 0xDC00 || second > 0xDFFF)
    return lone_surrogate(s, unit, i);
  *at = next + 6;
  return 0;
}

/* Checks the escape at *at (the backslash) and moves *at past it. */
static int scan_escape(scanner *s, size_t *at) {
  size_t i = *at;
  if (i + 1 >= s->len)
    return unexpected_end(s);

  switch (s->text[i + 1]) {
  case '"':
  case '\\':
  case '/':
  case 'b':
  case 'f':
  case 'n':
  case 'r':
  case 't':
    *at = i + 2;
    return 0;
  case 'u':
    return scan_unicode_escape(s, at);
  default:
    return invalid_byte(s, i + 1, "in string escape code");
  }
}

/* Printable ASCII other than the quote and the backslash needs no check;
 * the scan skips runs of it in a tight loop. */
static int is_plain_string_byte(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Scans the string whose opening quote is at s->pos. */
static int scan_string(scanner *s) {
  const unsigned char *text = s->text;
  size_t i = s->pos + 1;

  for (;;) {
    while (i < s->len && is_plain_string_byte(text[i]))
      i++;
    if (i >= s->len)
      return unexpected_end(s);

    unsigned char c = text[i];
    if (c == '"') {
      s->pos = i + 1;
      return 0;
    }
    if (c == '\\') {
      if (scan_escape(s, &i))
        return -1;
      continue;
    }
    if (c < 0x20)
      return invalid_byte(s, i, "in string literal");

    size_t n = utf8_sequence_length(text + i, s->len - i);
    if (n == 0) {
      set_error(s->err, s->err_size, "invalid UTF-8 at offset %zu", i);
      return -1;
    }
    i += n;
  }
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static size_t skip_digits(const scanner *s, size_t i) {
  while (i < s->len && is_digit(s->text[i]))
    i++;
  return i;
}

/* Scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at s->pos. */
static int scan_number(scanner *s) {
  const unsigned char *text = s->text;
  size_t start = s->pos, i = start;

  if (text[i] == '-')
    i++;
  if (i >= s->len)
    return unexpected_end(s);
  if (text[i] == '0')
    i++;
  else if (is_digit(text[i]))
    i = skip_digits(s, i);
  else
    return invalid_byte(s, i, "in numeric literal");

  if (i < s->len && text[i] == '.') {
    i++;
    if (i >= s->len)
      return unexpected_end(s);
    if (!is_digit(text[i]))
      return invalid_byte(s, i, "after decimal point in numeric literal");
    i = skip_digits(s, i);
  }

  if (i < s->len && (text[i] == 'e' || text[i] == 'E')) {
    i++;
    if (i < s->len && (text[i] == '+' || text[i] == '-'))
      i++;
    if (i >= s->len)
      return unexpected_end(s);
    if (!is_digit(text[i]))
      return invalid_byte(s, i, "in exponent of numeric literal");
    i = skip_digits(s, i);
  }

  if (i - start > JSON_MAX_NUMBER) {
    set_error(s->err, s->err_size,
              "number longer than %d characters at offset %zu", JSON_MAX_NUMBER,
              start);
    return -1;
  }
  s->pos = i;
  return 0;
}

static int scan_literal(scanner *s, const char *word) {
  for (size_t k = 0; word[k]; k++) {
    size_t at = s->pos + k;
    if (at >= s->len)
      return unexpected_end(s);
    if (s->text[at] != (unsigned char)word[k]) {
      char context[48];
      snprintf(context, sizeof context, "in literal %s (expecting '%c')", word,
               word[k]);
      return invalid_byte(s, at, context);
    }
  }
  s->pos += strlen(word);
  return 0;
}

static int scan_scalar(scanner *s) {
  unsigned char c = s->text[s->pos];
  if (c == '"')
    return scan_string(s);
  if (c == '-' || is_digit(c))
    return scan_number(s);
  if (c == 't')
    return scan_literal(s, "true");
  if (c == 'f')
    return scan_literal(s, "false");
  if (c == 'n')
    return scan_literal(s, "null");
  return invalid_byte(s, s->pos, "looking for beginning of value");
}

/* Scans an object key and its colon, leaving s->pos at the value. */
static int scan_key(scanner *s) {
  skip_whitespace(s);
  if (s->pos >= s->len)
    return unexpected_end(s);
  if (s->text[s->pos] != '"')
    return invalid_byte(s, s->pos,
                        "looking for beginning of object key string");
  if (scan_string(s))
    return -1;

  skip_whitespace(s);
  if (s->pos >= s->len)
    return unexpected_end(s);
  if (s->text[s->pos] != ':')
    return invalid_byte(s, s->pos, "after object key");
  s->pos++;
  return 0;
}

typedef struct nesting {
  unsigned char open[JSON_MAX_DEPTH]; /* '{' or '[' for each open level */
  size_t depth;
} nesting;

static unsigned char closing_of(unsigned char open) {
  return open == '{' ? '}' : ']';
}

/* Scans one value, or the start of a container. Returns 0 when a whole
 * value was consumed, 1 when a non-empty container was opened and its
 * first element comes next, -1 on error. */
static int scan_value(scanner *s, nesting *n) {
  skip_whitespace(s);
  if (s->pos >= s->len)
    return unexpected_end(s);

  unsigned char c = s->text[s->pos];
  if (c != '{' && c != '[')
    return scan_scalar(s);

  if (n->depth == JSON_MAX_DEPTH) {
    set_error(s->err, s->err_size, "nesting deeper than %d at offset %zu",
              JSON_MAX_DEPTH, s->pos);
    return -1;
  }
  s->pos++;
  skip_whitespace(s);
  if (s->pos >= s->len)
    return unexpected_end(s);
  if (s->text[s->pos] == closing_of(c)) {
    s->pos++;
    return 0;
  }

  n->open[n->depth++] = c;
  if (c == '{' && scan_key(s))
    return -1;
  return 1;
}

/* After a value: closes finished containers and consumes the comma (and
 * key) before the next element. Returns 0 when a value comes next, 1 when
 * the top-level value is complete, -1 on error. */
static int scan_after_value(scanner *s, nesting *n) {
  for (;;) {
    skip_whitespace(s);
    if (n->depth == 0)
      return 1;
    if (s->pos >= s->len)
      return unexpected_end(s);

    unsigned char c = s->text[s->pos];
    unsigned char open = n->open[n->depth - 1];
    if (c == ',') {
      s->pos++;
      if (open == '{' && scan_key(s))
        return -1;
      return 0;
    }
    if (c != closing_of(open))
      return invalid_byte(s, s->pos,
                          open == '{' ? "after object key:value pair"
                                      : "after array element");
    s->pos++;
    n->depth--;
  }
}

/* Checks that text[0..len) is exactly one JSON value and whitespace. */
static int scan_document(scanner *s) {
  nesting n;
  n.depth = 0;

  for (;;) {
    int step = scan_value(s, &n);
    if (step < 0)
      return -1;
    if (step == 1)
      continue;

    step = scan_after_value(s, &n);
    if (step < 0)
      return -1;
    if (step == 1)
      break;
  }

  if (s->pos < s->len)
    return invalid_byte(s, s->pos, "after top-level value");
  return 0;
}

/* Returns the length of the UTF-8 sequence that the valid lead byte c
 * starts. */
static size_t utf8_lead_length(unsigned char c) {
  if (c < 0x80)
    return 1;
  if (c < 0xE0)
    return 2;
  if (c < 0xF0)
    return 3;
  return 4;
}

/* Writes `duplicate key "<key>"` with quotes, backslashes and control
 * characters escaped, cut after JSON_KEY_SHOWN bytes between characters.
 * The key is valid UTF-8 because the scan checked it. */
static void report_duplicate(const char *key, char *err, size_t err_size) {
  char shown[JSON_KEY_SHOWN * 6 + 4];
  size_t out = 0, i = 0;

  while (key[i]) {
    unsigned char c = (unsigned char)key[i];
    size_t n = utf8_lead_length(c);
    if (i + n > JSON_KEY_SHOWN)
      break;
    if (c == '"' || c == '\\') {
      shown[out++] = '\\';
      shown[out++] = (char)c;
    } else if (c < 0x20) {
      out += (size_t)snprintf(shown + out, 7, "\\u%04X", c);
    } else {
      memcpy(shown + out, key + i, n);
      out += n;
    }
    i += n;
  }
  if (key[i]) {
    memcpy(shown + out, "...", 3);
    out += 3;
  }
  shown[out] = '\0';
  set_error(err, err_size, "duplicate key \"%s\"", shown);
}

static int compare_keys(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the first repeated key of a large object by sorting its keys,
 * so the cost stays O(n log n). Sets *failed when memory runs out. */
static const char *find_repeated_key_sorted(const cJSON *object, size_t count,
                                            int *failed) {
  const char **keys = apig_malloc(count * sizeof *keys);
  if (!keys) {
    *failed = 1;
    return NULL;
  }

  size_t i = 0;
  for (const cJSON *item = object->child; item; item = item->next)
    keys[i++] = item->string;
  qsort(keys, count, sizeof *keys, compare_keys);

  const char *repeated = NULL;
  for (i = 1; i < count && !repeated; i++)
    if (strcmp(keys[i - 1], keys[i]) == 0)
      repeated = keys[i];
  apig_free(keys);
  return repeated;
}

/* Keys contain no NUL because the scan rejects \u0000 and raw NUL bytes, so
 * strcmp compares the whole decoded byte strings. */
static const char *find_repeated_key(const cJSON *object, int *failed) {
  size_t count = 0;
  for (const cJSON *item = object->child; item; item = item->next)
    count++;
  if (count > JSON_PAIRWISE_KEYS)
    return find_repeated_key_sorted(object, count, failed);

  for (const cJSON *a = object->child; a; a = a->next)
    for (const cJSON *b = a->next; b; b = b->next)
      if (strcmp(a->string, b->string) == 0)
        return a->string;
  return NULL;
}

/* Checks every object under `item`. Recursion is bounded by the nesting
 * limit the scan enforced. Returns 0, or -1 with err set. */
static int check_duplicate_keys(const cJSON *item, char *err, size_t err_size) {
  if (cJSON_IsObject(item)) {
    int failed = 0;
    const char *repeated = find_repeated_key(item, &failed);
    if (failed) {
      set_error(err, err_size, "out of memory checking duplicate keys");
      return -1;
    }
    if (repeated) {
      report_duplicate(repeated, err, err_size);
      return -1;
    }
  }
  if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
    return 0;

  for (const cJSON *child = item->child; child; child = child->next)
    if (check_duplicate_keys(child, err, err_size))
      return -1;
  return 0;
}

/* Builds the tree of text that the scan accepted. Some cJSON releases read
 * past the length they are given when a string runs to its end, so cJSON
 * parses a NUL-terminated copy and never reads the caller's buffer. */
static cJSON *build_tree(const char *text, size_t len, char *err,
                         size_t err_size) {
  char *copy = apig_malloc(len + 1);
  if (!copy) {
    set_error(err, err_size, "out of memory copying the JSON input");
    return NULL;
  }
  memcpy(copy, text, len);
  copy[len] = '\0';

  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
  size_t offset = end ? (size_t)(end - copy) : 0;
  apig_free(copy);

  /* After the scan, only an allocation failure inside cJSON gets here. */
  if (!root)
    set_error(err, err_size,
              "out of memory building the JSON tree at offset %zu", offset);
  return root;
}

cJSON *apig_json_parse(const char *text, size_t len, char *err,
                       size_t err_size) {
  if (err && err_size)
    err[0] = '\0';
  if (!text)
    len = 0;

  scanner s = {(const unsigned char *)text, len, 0, err, err_size};
  if (scan_document(&s))
    return NULL;

  cJSON *root = build_tree(text, len, err, err_size);
  if (!root)
    return NULL;
  if (check_duplicate_keys(root, err, err_size)) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

int apig_json_out_of_memory(const char *err) {
  return err && strncmp(err, "out of memory", 13) == 0;
}

int apig_json_valid(const char *text, size_t len) {
  scanner s = {(const unsigned char *)text, text ? len : 0, 0, NULL, 0};
  return scan_document(&s) == 0;
}
