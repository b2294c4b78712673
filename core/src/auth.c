/* Authentication and permissions: IAM tokens, SDK-HMAC-SHA256 signatures,
 * development mode.
 *
 * A signature is checked by rebuilding the canonical request from the bytes
 * as received (raw path, raw query, header values, raw body), signing it
 * with the SK of the Access key and comparing in constant time:
 *
 *   method \n canonical URI \n canonical query \n
 *   name:value \n ... \n (one line per signed header, then an empty line)
 *   signed headers \n hex sha256(body)
 *
 * string to sign = "SDK-HMAC-SHA256\n" date "\n" hex sha256(canonical)
 * signature      = hex HMAC-SHA256(key = SK bytes, string to sign)
 *
 * Secrets (tokens and SKs) never leave this file: errors name the entry
 * index and the field, and the caller name is the token's name or the AK.
 */
#define _POSIX_C_SOURCE 200809L /* fileno */

#include "auth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "alloc.h"

/* uthash allocates through the library allocator, and an allocation
 * failure sets hash_oom (a local of the caller) instead of exiting. */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(size) apig_malloc(size)
#define uthash_free(ptr, size) apig_free(ptr)
#define uthash_nonfatal_oom(element) (hash_oom = 1)
#include <uthash.h>

#define SDK_ALGORITHM "SDK-HMAC-SHA256"
#define SDK_DATE_LEN 16 /* YYYYMMDDTHHMMSSZ */
#define SDK_DATE_SKEW_NS (15 * 60 * INT64_C(1000000000))
#define CREDENTIALS_MAX_BYTES (16 * 1024 * 1024)

/* One token or access key, keyed by the token or the AK. */
typedef struct credential {
  char *name;
  char *key;
  char *sk; /* NULL for a token */
  char *project_id;
  unsigned permissions;
  size_t index; /* position in its list, for error messages */
  UT_hash_handle hh;
} credential;

struct apig_credentials {
  credential *tokens;
  credential *access_keys;
};

/* ---- credentials file ---- */

static void set_error(char **errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(char **errmsg, const char *fmt, ...) {
  if (!errmsg || *errmsg)
    return;
  apig_buf b;
  apig_buf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  apig_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  if (b.failed) {
    apig_buf_free(&b);
    return;
  }
  *errmsg = b.data;
}

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    apig_free(s);
  }
}

static void credential_free(credential *c) {
  apig_free(c->name);
  free_secret(c->key);
  free_secret(c->sk);
  apig_free(c->project_id);
  apig_free(c);
}

static void credential_table_free(credential **table) {
  credential *c, *tmp;
  HASH_ITER(hh, *table, c, tmp) {
    HASH_DEL(*table, c);
    credential_free(c);
  }
}

void apig_credentials_free(apig_credentials *credentials) {
  if (!credentials)
    return;
  credential_table_free(&credentials->tokens);
  credential_table_free(&credentials->access_keys);
  apig_free(credentials);
}

/* Reads the whole file into a NUL-terminated buffer. Warns when its mode
 * gives group or others any access, because the file contains secrets. */
static char *read_credentials_file(const char *path,
                                   const apig_logger *logger, size_t *len,
                                   char **errmsg) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    set_error(errmsg, "cannot open credentials file %s: %s", path,
              strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > CREDENTIALS_MAX_BYTES) {
    set_error(errmsg,
              "credentials file %s is not a regular file of at most %d "
              "bytes",
              path, CREDENTIALS_MAX_BYTES);
    fclose(f);
    return NULL;
  }
  if (st.st_mode & 077)
    apig_logf(logger, APIG_LOG_WARN, "",
              "credentials file %s is accessible by group or others "
              "(mode %04o); restrict it with chmod 600",
              path, (unsigned)(st.st_mode & 07777));

  char *text = apig_malloc((size_t)st.st_size + 1);
  if (!text) {
    set_error(errmsg, "out of memory reading credentials file %s", path);
    fclose(f);
    return NULL;
  }
  *len = fread(text, 1, (size_t)st.st_size, f);
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    set_error(errmsg, "cannot read credentials file %s", path);
    apig_free(text);
    return NULL;
  }
  text[*len] = '\0';
  return text;
}

static const struct {
  const char *name;
  unsigned flag;
} permission_names[] = {{"read", APIG_PERM_READ},
                        {"publish", APIG_PERM_PUBLISH},
                        {"offline", APIG_PERM_OFFLINE},
                        {"manage", APIG_PERM_MANAGE}};

/* Where an entry sits, for messages: "tokens[3]". */
typedef struct entry_ctx {
  const char *path;
  const char *list;
  size_t index;
  int is_access_key;
  char **errmsg;
} entry_ctx;

static int parse_permissions(const entry_ctx *ctx, const cJSON *array,
                             unsigned *out) {
  *out = 0;
  if (!cJSON_IsArray(array)) {
    set_error(ctx->errmsg, "credentials file %s: %s[%zu]: \"permissions\" "
              "must be an array of strings",
              ctx->path, ctx->list, ctx->index);
    return -1;
  }
  const cJSON *item;
  cJSON_ArrayForEach(item, array) {
    if (!cJSON_IsString(item)) {
      set_error(ctx->errmsg, "credentials file %s: %s[%zu]: \"permissions\" "
                "must be an array of strings",
                ctx->path, ctx->list, ctx->index);
      return -1;
    }
    unsigned flag = 0;
    for (size_t i = 0; i < sizeof permission_names / sizeof *permission_names;
         i++)
      if (strcmp(item->valuestring, permission_names[i].name) == 0)
        flag = permission_names[i].flag;
    if (!flag) {
      set_error(ctx->errmsg, "credentials file %s: %s[%zu]: unknown "
                "permission \"%.64s\"; expected read, publish, offline or "
                "manage",
                ctx->path, ctx->list, ctx->index, item->valuestring);
      return -1;
    }
    *out |= flag;
  }
  return 0;
}

enum { F_NAME, F_KEY, F_SK, F_PROJECT, F_PERMISSIONS, F_COUNT };

/* Field names of a token entry and of an access key entry. A token has no
 * "sk" field. */
static const char *const field_names[2][F_COUNT] = {
    {"name", "token", NULL, "project_id", "permissions"},
    {"name", "ak", "sk", "project_id", "permissions"}};

static int field_index(const entry_ctx *ctx, const char *key) {
  for (int i = 0; i < F_COUNT; i++) {
    const char *name = field_names[ctx->is_access_key][i];
    if (name && strcmp(name, key) == 0)
      return i;
  }
  return -1;
}

/* Maps each member of the entry to its field, rejecting unknown and
 * repeated members, so a typo never drops a field silently. */
static int collect_fields(const entry_ctx *ctx, const cJSON *entry,
                          const cJSON *fields[F_COUNT]) {
  const cJSON *member;
  cJSON_ArrayForEach(member, entry) {
    int i = field_index(ctx, member->string);
    if (i < 0 || fields[i]) {
      set_error(ctx->errmsg, "credentials file %s: %s[%zu]: %s field "
                "\"%.64s\"",
                ctx->path, ctx->list, ctx->index,
                i < 0 ? "unknown" : "repeated", member->string);
      return -1;
    }
    fields[i] = member;
  }
  for (int i = 0; i < F_COUNT; i++) {
    const char *name = field_names[ctx->is_access_key][i];
    if (!name || i == F_PERMISSIONS)
      continue;
    if (!fields[i] || !cJSON_IsString(fields[i]) ||
        fields[i]->valuestring[0] == '\0') {
      set_error(ctx->errmsg, "credentials file %s: %s[%zu]: \"%s\" %s",
                ctx->path, ctx->list, ctx->index, name,
                fields[i] ? "must be a non-empty string" : "is missing");
      return -1;
    }
  }
  if (!fields[F_PERMISSIONS]) {
    set_error(ctx->errmsg,
              "credentials file %s: %s[%zu]: \"permissions\" is missing",
              ctx->path, ctx->list, ctx->index);
    return -1;
  }
  return 0;
}

static credential *parse_entry(const entry_ctx *ctx, const cJSON *entry) {
  const cJSON *fields[F_COUNT] = {0};
  if (!cJSON_IsObject(entry)) {
    set_error(ctx->errmsg, "credentials file %s: %s[%zu] must be an object",
              ctx->path, ctx->list, ctx->index);
    return NULL;
  }
  unsigned permissions;
  if (collect_fields(ctx, entry, fields) != 0 ||
      parse_permissions(ctx, fields[F_PERMISSIONS], &permissions) != 0)
    return NULL;

  credential *c = apig_calloc(1, sizeof *c);
  if (!c)
    goto oom;
  c->permissions = permissions;
  c->index = ctx->index;
  c->name = apig_strdup(fields[F_NAME]->valuestring);
  c->key = apig_strdup(fields[F_KEY]->valuestring);
  c->project_id = apig_strdup(fields[F_PROJECT]->valuestring);
  if (ctx->is_access_key)
    c->sk = apig_strdup(fields[F_SK]->valuestring);
  if (c->name && c->key && c->project_id && (c->sk || !ctx->is_access_key))
    return c;
  credential_free(c);
oom:
  set_error(ctx->errmsg, "out of memory loading credentials file %s",
            ctx->path);
  return NULL;
}

static int add_entry(const entry_ctx *ctx, credential **table,
                     credential *c) {
  credential *existing = NULL;
  size_t key_len = strlen(c->key);
  HASH_FIND(hh, *table, c->key, key_len, existing);
  if (existing) {
    set_error(ctx->errmsg, "credentials file %s: %s[%zu]: \"%s\" repeats "
              "the one of %s[%zu]",
              ctx->path, ctx->list, ctx->index,
              field_names[ctx->is_access_key][F_KEY], ctx->list,
              existing->index);
    credential_free(c);
    return -1;
  }
  int hash_oom = 0;
  HASH_ADD_KEYPTR(hh, *table, c->key, key_len, c);
  if (hash_oom) {
    set_error(ctx->errmsg, "out of memory loading credentials file %s",
              ctx->path);
    credential_free(c);
    return -1;
  }
  return 0;
}

static int load_list(const char *path, const cJSON *root, int is_access_key,
                     credential **table, char **errmsg) {
  entry_ctx ctx = {path, is_access_key ? "access_keys" : "tokens", 0,
                   is_access_key, errmsg};
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, ctx.list);
  if (!list)
    return 0;
  if (!cJSON_IsArray(list)) {
    set_error(errmsg, "credentials file %s: \"%s\" must be an array", path,
              ctx.list);
    return -1;
  }
  const cJSON *entry;
  cJSON_ArrayForEach(entry, list) {
    credential *c = parse_entry(&ctx, entry);
    if (!c || add_entry(&ctx, table, c) != 0)
      return -1;
    ctx.index++;
  }
  return 0;
}

static int check_top_level(const char *path, const cJSON *root,
                           char **errmsg) {
  if (!cJSON_IsObject(root)) {
    set_error(errmsg, "credentials file %s must contain a JSON object",
              path);
    return -1;
  }
  const cJSON *member;
  cJSON_ArrayForEach(member, root) {
    if (strcmp(member->string, "tokens") != 0 &&
        strcmp(member->string, "access_keys") != 0) {
      set_error(errmsg, "credentials file %s: unknown field \"%.64s\"; "
                "expected \"tokens\" and \"access_keys\"",
                path, member->string);
      return -1;
    }
  }
  return 0;
}

/* Finds a "\u0000" escape, which cJSON would turn into the end of the
 * string, silently shortening a token or a key. Returns its offset or -1. */
static long find_escaped_nul(const char *text, size_t len) {
  for (size_t i = 0; i + 1 < len; i++) {
    if (text[i] != '\\')
      continue;
    if (text[i + 1] == 'u' && i + 6 <= len &&
        memcmp(text + i + 2, "0000", 4) == 0)
      return (long)i;
    i++; /* skip the escaped character, so "\\u0000" is no match */
  }
  return -1;
}

static cJSON *parse_credentials_json(const char *path, char *text,
                                     size_t len, char **errmsg) {
  long nul = find_escaped_nul(text, len);
  if (nul >= 0) {
    set_error(errmsg, "credentials file %s: invalid escape \\u0000 at byte "
              "%ld, because strings cannot contain NUL",
              path, nul);
    OPENSSL_cleanse(text, len);
    return NULL;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  size_t offset = end ? (size_t)(end - text) : 0;
  if (!root) {
    set_error(errmsg, "credentials file %s: invalid JSON at byte %zu", path,
              offset);
  } else {
    while (offset < len && strchr(" \t\r\n", text[offset]) && text[offset])
      offset++;
    if (offset < len) {
      set_error(errmsg, "credentials file %s: unexpected data after the "
                "JSON value at byte %zu",
                path, offset);
      cJSON_Delete(root);
      root = NULL;
    }
  }
  OPENSSL_cleanse(text, len);
  return root;
}

apig_credentials *apig_credentials_load(const char *path,
                                        const apig_logger *logger,
                                        char **errmsg) {
  if (errmsg)
    *errmsg = NULL;
  size_t len = 0;
  char *text = read_credentials_file(path, logger, &len, errmsg);
  if (!text)
    return NULL;
  cJSON *root = parse_credentials_json(path, text, len, errmsg);
  apig_free(text);
  if (!root)
    return NULL;

  apig_credentials *credentials = apig_calloc(1, sizeof *credentials);
  if (!credentials)
    set_error(errmsg, "out of memory loading credentials file %s", path);
  if (!credentials || check_top_level(path, root, errmsg) != 0 ||
      load_list(path, root, 0, &credentials->tokens, errmsg) != 0 ||
      load_list(path, root, 1, &credentials->access_keys, errmsg) != 0) {
    apig_credentials_free(credentials);
    credentials = NULL;
  }
  cJSON_Delete(root);
  return credentials;
}

/* ---- canonical request and signature ---- */

typedef enum sign_status { SIGN_OK, SIGN_MALFORMED, SIGN_NOMEM } sign_status;

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
         c == '~';
}

static void append_encoded(apig_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c)) {
      apig_buf_putc(b, (char)c);
      continue;
    }
    char escape[3] = {'%', hex[c >> 4], hex[c & 15]};
    apig_buf_append(b, escape, 3);
  }
}

static void hex_encode(const unsigned char *bytes, size_t len, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hex[bytes[i] >> 4];
    out[2 * i + 1] = hex[bytes[i] & 15];
  }
  out[2 * len] = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) ||
      md_len != 32)
    return -1;
  hex_encode(md, md_len, out);
  return 0;
}

/* The path is decoded whole and then split, so a "%2F" inside a segment
 * becomes a separator of the canonical URI. */
static sign_status append_canonical_uri(apig_buf *b, const char *path,
                                        size_t len) {
  char *decoded = apig_malloc(len + 1);
  if (!decoded)
    return SIGN_NOMEM;
  long decoded_len = apig_percent_decode(path, len, decoded);
  if (decoded_len < 0) {
    apig_free(decoded);
    return SIGN_MALFORMED;
  }
  size_t start = 0;
  for (size_t i = 0; i <= (size_t)decoded_len; i++) {
    if (i < (size_t)decoded_len && decoded[i] != '/')
      continue;
    append_encoded(b, decoded + start, i - start);
    if (i < (size_t)decoded_len)
      apig_buf_putc(b, '/');
    start = i + 1;
  }
  apig_free(decoded);
  if (b->len == 0 || b->data[b->len - 1] != '/')
    apig_buf_putc(b, '/');
  return SIGN_OK;
}

typedef struct query_pair {
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
} query_pair;

static int compare_bytes(const char *a, size_t a_len, const char *b,
                         size_t b_len) {
  int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
  if (c != 0)
    return c;
  return a_len < b_len ? -1 : a_len > b_len;
}

static int compare_pairs(const void *a, const void *b) {
  const query_pair *x = a, *y = b;
  int c = compare_bytes(x->key, x->key_len, y->key, y->key_len);
  return c ? c : compare_bytes(x->value, x->value_len, y->value,
                               y->value_len);
}

/* Decodes one "k=v" (or "k") piece. Both halves live in one allocation
 * owned by pair->key. */
static sign_status decode_pair(const char *piece, size_t len,
                               query_pair *pair) {
  const char *eq = memchr(piece, '=', len);
  size_t key_raw = eq ? (size_t)(eq - piece) : len;
  size_t value_raw = eq ? len - key_raw - 1 : 0;
  char *storage = apig_malloc(len + 2);
  if (!storage)
    return SIGN_NOMEM;
  long key_len = apig_percent_decode(piece, key_raw, storage);
  long value_len = key_len < 0 ? -1
                               : apig_percent_decode(eq ? eq + 1 : "",
                                                     value_raw,
                                                     storage + key_len + 1);
  if (value_len < 0) {
    apig_free(storage);
    return SIGN_MALFORMED;
  }
  *pair = (query_pair){storage, (size_t)key_len, storage + key_len + 1,
                       (size_t)value_len};
  return SIGN_OK;
}

static sign_status split_query(const char *query, size_t len,
                               query_pair *pairs, size_t *count) {
  size_t start = 0;
  *count = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && query[i] != '&')
      continue;
    if (i > start) {
      sign_status status = decode_pair(query + start, i - start,
                                       &pairs[*count]);
      if (status != SIGN_OK)
        return status;
      (*count)++;
    }
    start = i + 1;
  }
  return SIGN_OK;
}

static sign_status append_canonical_query(apig_buf *b, const char *query,
                                          size_t len) {
  size_t max_pairs = 1;
  for (size_t i = 0; i < len; i++)
    max_pairs += query[i] == '&';
  query_pair *pairs = apig_calloc(max_pairs, sizeof *pairs);
  if (!pairs)
    return SIGN_NOMEM;
  size_t count = 0;
  sign_status status = split_query(query, len, pairs, &count);
  if (status == SIGN_OK) {
    qsort(pairs, count, sizeof *pairs, compare_pairs);
    for (size_t i = 0; i < count; i++) {
      if (i > 0)
        apig_buf_putc(b, '&');
      append_encoded(b, pairs[i].key, pairs[i].key_len);
      apig_buf_putc(b, '=');
      append_encoded(b, pairs[i].value, pairs[i].value_len);
    }
  }
  for (size_t i = 0; i < max_pairs; i++)
    apig_free(pairs[i].key);
  apig_free(pairs);
  return status;
}

static void trim(const char **s, size_t *len) {
  while (*len && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*len)--;
  }
  while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
    (*len)--;
}

static int header_is(const apig_header *h, const char *name, size_t len) {
  return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

static int compare_values(const void *a, const void *b) {
  const apig_header *x = a, *y = b;
  return compare_bytes(x->value, x->value_len, y->value, y->value_len);
}

/* Emits "name:value\n" for each occurrence of the header, trimmed values
 * in byte order, or "name:\n" when the request lacks it. */
static sign_status append_header_lines(apig_buf *b, const char *name,
                                       size_t name_len,
                                       const apig_header *headers,
                                       size_t count) {
  apig_header *values = apig_calloc(count ? count : 1, sizeof *values);
  if (!values)
    return SIGN_NOMEM;
  size_t found = 0;
  for (size_t i = 0; i < count; i++) {
    if (!header_is(&headers[i], name, name_len))
      continue;
    values[found] = headers[i];
    trim(&values[found].value, &values[found].value_len);
    found++;
  }
  qsort(values, found, sizeof *values, compare_values);
  for (size_t i = 0; i < (found ? found : 1); i++) {
    apig_buf_append(b, name, name_len);
    apig_buf_putc(b, ':');
    if (found)
      apig_buf_append(b, values[i].value, values[i].value_len);
    apig_buf_putc(b, '\n');
  }
  apig_free(values);
  return SIGN_OK;
}

static sign_status append_canonical_headers(apig_buf *b,
                                            const apig_header *headers,
                                            size_t count,
                                            const char *signed_headers) {
  const char *name = signed_headers;
  for (;;) {
    const char *end = strchr(name, ';');
    size_t len = end ? (size_t)(end - name) : strlen(name);
    if (append_header_lines(b, name, len, headers, count) != SIGN_OK)
      return SIGN_NOMEM;
    if (!end)
      break;
    name = end + 1;
  }
  apig_buf_putc(b, '\n');
  return SIGN_OK;
}

typedef struct sign_input {
  const char *method;
  const char *raw_path;
  size_t raw_path_len;
  const char *raw_query;
  size_t raw_query_len;
  const apig_header *headers;
  size_t header_count;
  const char *signed_headers;
  const char *body;
  size_t body_len;
  const char *content_sha256;
} sign_input;

static sign_status build_canonical_request(apig_buf *b,
                                           const sign_input *in) {
  apig_buf_puts(b, in->method);
  apig_buf_putc(b, '\n');
  sign_status status = append_canonical_uri(b, in->raw_path,
                                            in->raw_path_len);
  if (status != SIGN_OK)
    return status;
  apig_buf_putc(b, '\n');
  status = append_canonical_query(b, in->raw_query, in->raw_query_len);
  if (status != SIGN_OK)
    return status;
  apig_buf_putc(b, '\n');
  status = append_canonical_headers(b, in->headers, in->header_count,
                                    in->signed_headers);
  if (status != SIGN_OK)
    return status;
  apig_buf_puts(b, in->signed_headers);
  apig_buf_putc(b, '\n');

  char body_hash[65];
  if (in->content_sha256) {
    apig_buf_puts(b, in->content_sha256);
  } else {
    if (sha256_hex(in->body ? in->body : "", in->body_len, body_hash) != 0)
      return SIGN_NOMEM;
    apig_buf_puts(b, body_hash);
  }
  return b->failed ? SIGN_NOMEM : SIGN_OK;
}

static sign_status sign_request(const char *sk, const sign_input *in,
                                const char *sdk_date, char out[65]) {
  apig_buf canonical;
  apig_buf_init(&canonical);
  sign_status status = build_canonical_request(&canonical, in);
  char canonical_hash[65];
  if (status == SIGN_OK &&
      sha256_hex(canonical.data, canonical.len, canonical_hash) != 0)
    status = SIGN_NOMEM;
  apig_buf_free(&canonical);
  if (status != SIGN_OK)
    return status;

  apig_buf to_sign;
  apig_buf_init(&to_sign);
  apig_buf_printf(&to_sign, "%s\n%s\n%s", SDK_ALGORITHM, sdk_date,
                  canonical_hash);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  int ok = !to_sign.failed &&
           HMAC(EVP_sha256(), sk, (int)strlen(sk),
                (const unsigned char *)to_sign.data, to_sign.len, mac,
                &mac_len) &&
           mac_len == 32;
  apig_buf_free(&to_sign);
  if (!ok)
    return SIGN_NOMEM;
  hex_encode(mac, mac_len, out);
  OPENSSL_cleanse(mac, sizeof mac);
  return SIGN_OK;
}

int apig_sign(const char *sk, const char *method, const char *raw_path,
              size_t raw_path_len, const char *raw_query,
              size_t raw_query_len, const apig_header *headers,
              size_t header_count, const char *signed_headers,
              const char *sdk_date, const char *body, size_t body_len,
              const char *content_sha256, char out[65]) {
  sign_input in = {.method = method,
                   .raw_path = raw_path,
                   .raw_path_len = raw_path_len,
                   .raw_query = raw_query,
                   .raw_query_len = raw_query_len,
                   .headers = headers,
                   .header_count = header_count,
                   .signed_headers = signed_headers,
                   .body = body,
                   .body_len = body_len,
                   .content_sha256 = content_sha256};
  return sign_request(sk, &in, sdk_date, out) == SIGN_OK ? 0 : -1;
}

/* ---- authentication ---- */

/* Copies a name for logs and handlers, with bytes outside printable ASCII
 * replaced by '?', since in development mode the AK is whatever the client
 * sent. */
static void copy_caller(char *caller, size_t size, const char *name,
                        size_t len) {
  if (!size)
    return;
  size_t n = len < size - 1 ? len : size - 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    caller[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  caller[n] = '\0';
}

static int has_repeated_auth_header(const apig_auth_request *request) {
  static const char *const names[] = {"X-Auth-Token", "Authorization",
                                      "X-Sdk-Date"};
  for (size_t i = 0; i < 3; i++)
    if (apig_find_header(request->headers, request->header_count, names[i],
                         NULL) > 1)
      return 1;
  return 0;
}

/* The parts of "SDK-HMAC-SHA256 Access=..., SignedHeaders=...,
 * Signature=...", pointing into the header value. */
typedef struct sdk_authorization {
  const char *part[3];
  size_t part_len[3];
} sdk_authorization;

enum { PART_ACCESS, PART_SIGNED_HEADERS, PART_SIGNATURE };

static int store_part(sdk_authorization *auth, const char *item,
                      size_t len) {
  static const char *const keys[] = {"Access=", "SignedHeaders=",
                                     "Signature="};
  for (int i = 0; i < 3; i++) {
    size_t key_len = strlen(keys[i]);
    if (len < key_len || memcmp(item, keys[i], key_len) != 0)
      continue;
    if (auth->part[i])
      return -1;
    auth->part[i] = item + key_len;
    auth->part_len[i] = len - key_len;
    return 0;
  }
  return 0; /* other parameters carry nothing this check uses */
}

static int parse_authorization(const apig_header *header,
                               sdk_authorization *auth) {
  const char *s = header->value;
  size_t len = header->value_len;
  trim(&s, &len);
  size_t prefix = strlen(SDK_ALGORITHM " ");
  if (len < prefix || memcmp(s, SDK_ALGORITHM " ", prefix) != 0)
    return -1;
  memset(auth, 0, sizeof *auth);
  size_t start = prefix;
  for (size_t i = prefix; i <= len; i++) {
    if (i < len && s[i] != ',')
      continue;
    const char *item = s + start;
    size_t item_len = i - start;
    trim(&item, &item_len);
    if (store_part(auth, item, item_len) != 0)
      return -1;
    start = i + 1;
  }
  for (int i = 0; i < 3; i++)
    if (!auth->part[i] || auth->part_len[i] == 0)
      return -1;
  return 0;
}

static int parse_digits(const char *s, int count) {
  int value = 0;
  for (int i = 0; i < count; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int year, int month) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

/* Parses YYYYMMDDTHHMMSSZ (UTC) into nanoseconds since the epoch. */
static int parse_sdk_date(const char *s, size_t len, int64_t *ns) {
  if (len != SDK_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
    return -1;
  int year = parse_digits(s, 4), month = parse_digits(s + 4, 2);
  int day = parse_digits(s + 6, 2), hour = parse_digits(s + 9, 2);
  int minute = parse_digits(s + 11, 2), second = parse_digits(s + 13, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 ||
      day > days_in_month(year, month) || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 59)
    return -1;
  int64_t seconds = days_from_civil(year, month, day) * 86400 +
                    hour * 3600 + minute * 60 + second;
  /* Nanoseconds in int64 span the years 1678 to 2261. A date beyond half
   * that span is clamped to it: still far from the server's time, so it is
   * rejected as expired, and comparing it with the time cannot overflow. */
  const int64_t limit = INT64_MAX / INT64_C(1000000000) / 2;
  if (seconds > limit)
    seconds = limit;
  else if (seconds < -limit)
    seconds = -limit;
  *ns = seconds * INT64_C(1000000000);
  return 0;
}

static int list_contains(const char *list, size_t len, const char *name) {
  size_t name_len = strlen(name), start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && list[i] != ';')
      continue;
    if (i - start == name_len && memcmp(list + start, name, name_len) == 0)
      return 1;
    start = i + 1;
  }
  return 0;
}

static apig_error check_sdk_date(const apig_auth_request *request,
                                 const sdk_authorization *auth,
                                 char date[SDK_DATE_LEN + 1]) {
  const apig_header *header = NULL;
  if (!apig_find_header(request->headers, request->header_count,
                        "X-Sdk-Date", &header))
    return APIG_E_SIGNATURE_INVALID;
  const char *value = header->value;
  size_t len = header->value_len;
  trim(&value, &len);
  int64_t date_ns;
  if (parse_sdk_date(value, len, &date_ns) != 0)
    return APIG_E_SIGNATURE_INVALID;
  if (date_ns - request->now_ns > SDK_DATE_SKEW_NS ||
      request->now_ns - date_ns > SDK_DATE_SKEW_NS)
    return APIG_E_SDK_DATE_EXPIRED;
  if (!list_contains(auth->part[PART_SIGNED_HEADERS],
                     auth->part_len[PART_SIGNED_HEADERS], "x-sdk-date"))
    return APIG_E_SIGNATURE_INVALID;
  memcpy(date, value, SDK_DATE_LEN);
  date[SDK_DATE_LEN] = '\0';
  return APIG_E_OK;
}

/* Copies the X-Sdk-Content-Sha256 value, or stores NULL when absent. A
 * repeated header makes the payload hash ambiguous and fails the check. */
static apig_error get_content_sha256(const apig_auth_request *request,
                                     char **out) {
  const apig_header *header = NULL;
  size_t count = apig_find_header(request->headers, request->header_count,
                                  "X-Sdk-Content-Sha256", &header);
  *out = NULL;
  if (count == 0)
    return APIG_E_OK;
  if (count > 1)
    return APIG_E_SIGNATURE_INVALID;
  *out = apig_strndup(header->value, header->value_len);
  return *out ? APIG_E_OK : APIG_E_SYSTEM;
}

static apig_error verify_signature(const credential *c,
                                   const apig_auth_request *request,
                                   const sdk_authorization *auth,
                                   const char *date) {
  char *content_sha256 = NULL;
  apig_error error = get_content_sha256(request, &content_sha256);
  char *signed_headers = apig_strndup(auth->part[PART_SIGNED_HEADERS],
                                      auth->part_len[PART_SIGNED_HEADERS]);
  if (error != APIG_E_OK || !signed_headers) {
    apig_free(content_sha256);
    apig_free(signed_headers);
    return error != APIG_E_OK ? error : APIG_E_SYSTEM;
  }
  sign_input in = {.method = request->method,
                   .raw_path = request->raw_path,
                   .raw_path_len = request->raw_path_len,
                   .raw_query = request->raw_query,
                   .raw_query_len = request->raw_query_len,
                   .headers = request->headers,
                   .header_count = request->header_count,
                   .signed_headers = signed_headers,
                   .body = request->body,
                   .body_len = request->body_len,
                   .content_sha256 = content_sha256};
  char expected[65];
  sign_status status = sign_request(c->sk, &in, date, expected);
  apig_free(content_sha256);
  apig_free(signed_headers);
  if (status == SIGN_NOMEM)
    return APIG_E_SYSTEM;
  if (status == SIGN_MALFORMED || auth->part_len[PART_SIGNATURE] != 64 ||
      CRYPTO_memcmp(expected, auth->part[PART_SIGNATURE], 64) != 0)
    return APIG_E_SIGNATURE_INVALID;
  return APIG_E_OK;
}

static apig_error check_signature(const apig_credentials *credentials,
                                  const apig_auth_request *request,
                                  const apig_header *header,
                                  const credential **found, char *caller,
                                  size_t caller_size) {
  sdk_authorization auth;
  if (parse_authorization(header, &auth) != 0)
    return APIG_E_SIGNATURE_INVALID;
  const char *ak = auth.part[PART_ACCESS];
  size_t ak_len = auth.part_len[PART_ACCESS];
  if (!credentials) {
    copy_caller(caller, caller_size, ak, ak_len);
    return APIG_E_OK;
  }

  credential *c = NULL;
  HASH_FIND(hh, credentials->access_keys, ak, ak_len, c);
  if (!c)
    return APIG_E_AK_UNKNOWN;
  char date[SDK_DATE_LEN + 1];
  apig_error error = check_sdk_date(request, &auth, date);
  if (error == APIG_E_OK)
    error = verify_signature(c, request, &auth, date);
  if (error != APIG_E_OK)
    return error;
  *found = c;
  copy_caller(caller, caller_size, ak, ak_len);
  return APIG_E_OK;
}

static apig_error check_token(const apig_credentials *credentials,
                              const apig_auth_request *request,
                              const credential **found, char *caller,
                              size_t caller_size) {
  const apig_header *header = NULL;
  if (!apig_find_header(request->headers, request->header_count,
                        "X-Auth-Token", &header))
    return APIG_E_TOKEN_MISSING;
  const char *token = header->value;
  size_t len = header->value_len;
  trim(&token, &len);
  if (len == 0)
    return APIG_E_TOKEN_INVALID;
  if (!credentials) {
    copy_caller(caller, caller_size, "developer", strlen("developer"));
    return APIG_E_OK;
  }
  credential *c = NULL;
  HASH_FIND(hh, credentials->tokens, token, len, c);
  if (!c)
    return APIG_E_TOKEN_INVALID;
  *found = c;
  copy_caller(caller, caller_size, c->name, strlen(c->name));
  return APIG_E_OK;
}

static int project_matches(const char *project_id, const char *value,
                           size_t len) {
  return project_id && strlen(project_id) == len &&
         memcmp(project_id, value, len) == 0;
}

/* A credential works on its own project only, with its permissions. Every
 * X-Project-Id header present must name the project of the path. */
static apig_error check_access(const credential *c,
                               const apig_auth_request *request) {
  if (c && (!project_matches(request->project_id, c->project_id,
                             strlen(c->project_id)) ||
            (c->permissions & request->permission) != request->permission))
    return APIG_E_NO_PERMISSION;
  for (size_t i = 0; i < request->header_count; i++) {
    const apig_header *h = &request->headers[i];
    if (!header_is(h, "X-Project-Id", strlen("X-Project-Id")))
      continue;
    const char *value = h->value;
    size_t len = h->value_len;
    trim(&value, &len);
    if (!project_matches(request->project_id, value, len))
      return APIG_E_NO_PERMISSION;
  }
  return APIG_E_OK;
}

apig_error apig_authenticate(const apig_credentials *credentials,
                             const apig_auth_request *request, char *caller,
                             size_t caller_size) {
  if (caller_size)
    caller[0] = '\0';
  if (has_repeated_auth_header(request))
    return APIG_E_TOKEN_INVALID;

  const credential *c = NULL;
  const apig_header *authorization = NULL;
  apig_error error;
  if (apig_find_header(request->headers, request->header_count,
                       "Authorization", &authorization))
    error = check_signature(credentials, request, authorization, &c, caller,
                            caller_size);
  else
    error = check_token(credentials, request, &c, caller, caller_size);
  if (error == APIG_E_OK)
    error = check_access(c, request);
  if (error != APIG_E_OK && caller_size)
    caller[0] = '\0';
  return error;
}
