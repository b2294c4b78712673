/* Extracting the stored fields of an API definition (see def_fields.h).
 *
 * A restart extracts them from every definition in the snapshot, so the
 * common case avoids building a cJSON tree: once the strict scan of json.c
 * has accepted the text, a walk over the top-level object finds the wanted
 * values. A wanted string or a key with an escape, or a "type" that is not
 * a small integer, sends the text to cJSON instead. For every text both
 * ways give the same fields, the first occurrence of a repeated key
 * included, as cJSON_GetObjectItemCaseSensitive does.
 */
#include "def_fields.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "alloc.h"
#include "json.h"

static const char *const field_names[APIG_FIELD_COUNT] = {
    "name",   "req_method",   "req_uri", "auth_type",
    "req_protocol", "backend_type", "remark"};

typedef struct found {
  const char *at[APIG_FIELD_COUNT];
  size_t len[APIG_FIELD_COUNT];
  int type;
} found;

/* Copies the found strings into one allocation. */
static int copy_out(apig_def_fields *out, const found *f) {
  size_t total = 0;
  for (int i = 0; i < APIG_FIELD_COUNT; i++)
    if (f->at[i])
      total += f->len[i] + 1;
  memset(out, 0, sizeof *out);
  out->type = f->type;
  out->text = apig_malloc(total ? total : 1);
  if (!out->text)
    return -1;
  char *next = out->text;
  for (int i = 0; i < APIG_FIELD_COUNT; i++) {
    if (!f->at[i])
      continue;
    memcpy(next, f->at[i], f->len[i]);
    next[f->len[i]] = '\0';
    out->value[i] = next;
    next += f->len[i] + 1;
  }
  return 0;
}

/* ---- the walk over text that apig_json_valid accepted ---- */

static const char *skip_space(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* p is at an opening quote; returns the closing quote and sets *escaped
 * when the string contains a backslash. */
static const char *string_end(const char *p, const char *end, int *escaped) {
  *escaped = 0;
  for (p++; p < end && *p != '"'; p++)
    if (*p == '\\') {
      *escaped = 1;
      p++;
    }
  return p;
}

/* Returns the first byte after the value that starts at p. */
static const char *skip_value(const char *p, const char *end) {
  int escaped;
  if (*p == '"')
    return string_end(p, end, &escaped) + 1;
  if (*p != '{' && *p != '[') {
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
           *p != '\t' && *p != '\n' && *p != '\r')
      p++;
    return p;
  }
  size_t depth = 0;
  for (; p < end; p++) {
    if (*p == '"')
      p = string_end(p, end, &escaped);
    else if (*p == '{' || *p == '[')
      depth++;
    else if ((*p == '}' || *p == ']') && --depth == 0)
      return p + 1;
  }
  return p;
}

/* Reads a small integer literal, as cJSON's valueint would give it;
 * returns 0, or -1 for any other number. */
static int small_integer(const char *p, const char *end, int *value) {
  int negative = p < end && *p == '-';
  if (negative)
    p++;
  int digits = 0, v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    if (++digits > 9)
      return -1;
    v = v * 10 + (*p - '0');
  }
  if (digits == 0 || (p < end && (*p == '.' || *p == 'e' || *p == 'E')))
    return -1;
  *value = negative ? -v : v;
  return 0;
}

static int field_index(const char *key, size_t len) {
  for (int i = 0; i < APIG_FIELD_COUNT; i++)
    if (strlen(field_names[i]) == len && memcmp(field_names[i], key, len) == 0)
      return i;
  if (len == 4 && memcmp(key, "type", 4) == 0)
    return APIG_FIELD_COUNT;
  return -1;
}

/* Returns 0, or 1 when the text needs cJSON. Only the first occurrence of
 * a key counts, whatever its value, as with cJSON. */
static int walk(const char *p, const char *end, found *f) {
  int seen[APIG_FIELD_COUNT + 1] = {0};
  int escaped;
  p = skip_space(p, end);
  if (p == end || *p != '{')
    return 1;
  p = skip_space(p + 1, end);
  while (p < end && *p == '"') {
    const char *key = p + 1;
    p = string_end(p, end, &escaped);
    if (escaped)
      return 1;
    int index = field_index(key, (size_t)(p - key));
    p = skip_space(p + 1, end); /* at ':' */
    p = skip_space(p + 1, end);
    int first = index >= 0 && !seen[index];
    if (index >= 0)
      seen[index] = 1;
    if (first && index < APIG_FIELD_COUNT && *p == '"') {
      const char *close = string_end(p, end, &escaped);
      if (escaped)
        return 1;
      f->at[index] = p + 1;
      f->len[index] = (size_t)(close - p - 1);
    } else if (first && index == APIG_FIELD_COUNT &&
               (*p == '-' || (*p >= '0' && *p <= '9')) &&
               small_integer(p, end, &f->type) != 0) {
      return 1;
    }
    p = skip_space(skip_value(p, end), end);
    if (p < end && *p == ',')
      p = skip_space(p + 1, end);
  }
  return 0;
}

/* ---- the cJSON way ---- */

static int read_with_cjson(apig_def_fields *out, const char *def,
                           size_t len) {
  cJSON *obj = cJSON_ParseWithLength(def, len);
  if (!cJSON_IsObject(obj)) {
    cJSON_Delete(obj);
    return -1;
  }
  found f;
  memset(&f, 0, sizeof f);
  for (int i = 0; i < APIG_FIELD_COUNT; i++) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field_names[i]);
    if (cJSON_IsString(item)) {
      f.at[i] = item->valuestring;
      f.len[i] = strlen(item->valuestring);
    }
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
  f.type = cJSON_IsNumber(type) ? type->valueint : 0;
  int rc = copy_out(out, &f);
  cJSON_Delete(obj);
  return rc;
}

int apig_def_fields_read(apig_def_fields *out, const char *def, size_t len) {
  memset(out, 0, sizeof *out);
  found f;
  memset(&f, 0, sizeof f);
  if (apig_json_valid(def, len) && walk(def, def + len, &f) == 0)
    return copy_out(out, &f);
  return read_with_cjson(out, def, len);
}
