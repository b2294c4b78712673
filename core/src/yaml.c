/* YAML documents as cJSON trees, built from libyaml's parser events.
 *
 * Collections are built on an explicit stack, so deep nesting costs no C
 * stack; the stack is limited to MAX_DEPTH levels, as JSON bodies are.
 * Aliases are resolved by copying the anchored node, and every node counts
 * towards a budget that grows with the input length: an alias bomb (a
 * billion laughs) fails instead of filling memory. An alias to a node that
 * is still open (a cycle) is rejected.
 *
 * Plain scalars follow the YAML 1.2 core schema: null, booleans, integers
 * (decimal, 0o octal, 0x hex) and floats; everything else is a string.
 * Quoted and block scalars are always strings. Keys are kept as written.
 */
#include "apig_yaml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "alloc.h"
#include "util.h"

/* uthash allocates through the library allocator, and an allocation
 * failure sets hash_oom (a local of the caller) instead of exiting. */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(size) apig_malloc(size)
#define uthash_free(ptr, size) apig_free(ptr)
#define uthash_nonfatal_oom(element) (hash_oom = 1)
#include <uthash.h>

#define MAX_DEPTH 512
#define TAG_PREFIX "tag:yaml.org,2002:"

/* A key of an open mapping, for duplicate detection; the key text is the
 * cJSON item's own string. */
typedef struct seen_key {
  UT_hash_handle hh;
} seen_key;

typedef struct frame {
  cJSON *node;       /* the object or array being filled */
  char *anchor;      /* registered once the node is complete, or NULL */
  char *pending_key; /* mappings: the key waiting for its value */
  seen_key *keys;
} frame;

typedef struct anchor {
  char *name;
  const cJSON *node; /* complete node inside the tree */
  char *text;        /* raw text when the node is a scalar, for keys */
  size_t size;       /* nodes in the subtree */
  int height;        /* levels in the subtree, 1 for a scalar */
  UT_hash_handle hh;
} anchor;

typedef struct builder {
  frame stack[MAX_DEPTH];
  int depth;
  anchor *anchors;
  cJSON *root;
  size_t nodes, max_nodes;
  int documents;
  char *err;
  size_t err_size;
} builder;

static int fail_at(builder *b, const yaml_mark_t *mark, const char *what,
                   const char *detail) {
  snprintf(b->err, b->err_size, "invalid YAML at line %zu, column %zu: %s%s",
           mark->line + 1, mark->column + 1, what, detail ? detail : "");
  return -1;
}

static void frame_clear(frame *f) {
  seen_key *key, *tmp;
  HASH_ITER(hh, f->keys, key, tmp) {
    HASH_DEL(f->keys, key);
    apig_free(key);
  }
  apig_free(f->anchor);
  apig_free(f->pending_key);
  memset(f, 0, sizeof *f);
}

static void builder_free(builder *b) {
  while (b->depth > 0) {
    frame *f = &b->stack[--b->depth];
    cJSON_Delete(f->node);
    frame_clear(f);
  }
  anchor *a, *tmp;
  HASH_ITER(hh, b->anchors, a, tmp) {
    HASH_DEL(b->anchors, a);
    apig_free(a->name);
    apig_free(a->text);
    apig_free(a);
  }
}

static void measure(const cJSON *node, size_t *size, int *height) {
  *size = 1;
  *height = 1;
  for (const cJSON *child = node->child; child; child = child->next) {
    size_t child_size;
    int child_height;
    measure(child, &child_size, &child_height);
    *size += child_size;
    if (child_height + 1 > *height)
      *height = child_height + 1;
  }
}

/* Records that name now refers to node; a later anchor of the same name
 * replaces an earlier one, as the YAML specification requires. */
static int add_anchor(builder *b, const char *name, const cJSON *node,
                      const char *text) {
  anchor *a;
  int hash_oom = 0;
  HASH_FIND_STR(b->anchors, name, a);
  if (!a) {
    a = apig_calloc(1, sizeof *a);
    if (!a || !(a->name = apig_strdup(name))) {
      apig_free(a);
      return -1;
    }
    HASH_ADD_KEYPTR(hh, b->anchors, a->name, strlen(a->name), a);
    if (hash_oom) {
      apig_free(a->name);
      apig_free(a);
      return -1;
    }
  }
  apig_free(a->text);
  a->text = text ? apig_strdup(text) : NULL;
  a->node = node;
  a->size = 1;
  a->height = 1;
  if (node)
    measure(node, &a->size, &a->height);
  return text && !a->text ? -1 : 0;
}

/* Adds key (the key's text) to the open mapping f, rejecting a repeat. */
static int add_member(builder *b, frame *f, cJSON *node,
                      const yaml_mark_t *mark) {
  const char *key = f->pending_key;
  seen_key *seen;
  HASH_FIND_STR(f->keys, key, seen);
  if (seen) {
    cJSON_Delete(node);
    return fail_at(b, mark, "duplicate key ", key);
  }
  seen = apig_calloc(1, sizeof *seen);
  if (!seen || !cJSON_AddItemToObject(f->node, key, node)) {
    apig_free(seen);
    cJSON_Delete(node);
    return fail_at(b, mark, "out of memory", NULL);
  }
  const char *stored = node->string;
  int hash_oom = 0;
  HASH_ADD_KEYPTR(hh, f->keys, stored, strlen(stored), seen);
  if (hash_oom) {
    apig_free(seen);
    return fail_at(b, mark, "out of memory", NULL);
  }
  apig_free(f->pending_key);
  f->pending_key = NULL;
  return 0;
}

/* Places a complete node: the root, an array element or a mapping value.
 * Takes node in every case. */
static int place(builder *b, cJSON *node, const yaml_mark_t *mark) {
  if (b->depth == 0) {
    b->root = node;
    return 0;
  }
  frame *f = &b->stack[b->depth - 1];
  if (cJSON_IsObject(f->node))
    return add_member(b, f, node, mark);
  if (!cJSON_AddItemToArray(f->node, node)) {
    cJSON_Delete(node);
    return fail_at(b, mark, "out of memory", NULL);
  }
  return 0;
}

static int count_nodes(builder *b, size_t n, const yaml_mark_t *mark) {
  b->nodes += n;
  if (b->nodes > b->max_nodes)
    return fail_at(b, mark, "too many nodes (aliases expand beyond the "
                   "size of the input)", NULL);
  return 0;
}

/* ---- scalars ---- */

static int matches_any(const char *value, const char *const *words) {
  for (; *words; words++)
    if (strcmp(value, *words) == 0)
      return 1;
  return 0;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL",
                                         NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};

static int all_digits(const char *s, int base) {
  if (!*s)
    return 0;
  for (; *s; s++) {
    int ok = base == 16 ? strchr("0123456789abcdefABCDEF", *s) != NULL
             : base == 8 ? (*s >= '0' && *s <= '7')
                         : (*s >= '0' && *s <= '9');
    if (!ok)
      return 0;
  }
  return 1;
}

/* Integers of the core schema: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+. */
static int parse_int(const char *s, double *out) {
  int base = 10;
  double sign = 1;
  if (s[0] == '0' && s[1] == 'o') {
    base = 8;
    s += 2;
  } else if (s[0] == '0' && s[1] == 'x') {
    base = 16;
    s += 2;
  } else if (*s == '-' || *s == '+') {
    sign = *s == '-' ? -1 : 1;
    s++;
  }
  if (!all_digits(s, base))
    return 0;
  *out = sign * (double)strtoull(s, NULL, base);
  if (base == 10)
    *out = sign * strtod(s, NULL);
  return 1;
}

/* Floats of the core schema:
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int parse_float(const char *s, double *out) {
  const char *p = s;
  if (*p == '-' || *p == '+')
    p++;
  size_t whole = strspn(p, "0123456789");
  p += whole;
  size_t fraction = 0;
  if (*p == '.') {
    p++;
    fraction = strspn(p, "0123456789");
    p += fraction;
  }
  if (whole == 0 && fraction == 0)
    return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    size_t exponent = strspn(p, "0123456789");
    if (exponent == 0)
      return 0;
    p += exponent;
  }
  if (*p)
    return 0;
  *out = strtod(s, NULL);
  return 1;
}

typedef enum scalar_kind { KIND_ANY, KIND_STR, KIND_NULL, KIND_BOOL,
                           KIND_INT, KIND_FLOAT, KIND_BAD } scalar_kind;

static scalar_kind tag_kind(const char *tag) {
  if (!tag)
    return KIND_ANY;
  if (strcmp(tag, "!") == 0)
    return KIND_STR;
  size_t n = strlen(TAG_PREFIX);
  if (strncmp(tag, TAG_PREFIX, n) != 0)
    return KIND_BAD;
  static const char *const names[] = {"str", "null", "bool", "int", "float"};
  for (int i = 0; i < 5; i++)
    if (strcmp(tag + n, names[i]) == 0)
      return (scalar_kind)(KIND_STR + i);
  return KIND_BAD;
}

/* Resolves a plain (or explicitly tagged) scalar. Returns NULL when the
 * value does not fit the wanted kind. A float that JSON cannot hold
 * (.inf, .nan, an overflow) stays a string.
 * NOTE: JSON has no infinity or NaN, so those floats keep their text. */
static cJSON *resolve(const char *value, scalar_kind kind) {
  double number;
  if ((kind == KIND_ANY || kind == KIND_NULL) &&
      matches_any(value, null_words))
    return cJSON_CreateNull();
  if (kind == KIND_ANY || kind == KIND_BOOL) {
    if (matches_any(value, true_words))
      return cJSON_CreateTrue();
    if (matches_any(value, false_words))
      return cJSON_CreateFalse();
  }
  if ((kind == KIND_ANY || kind == KIND_INT || kind == KIND_FLOAT) &&
      parse_int(value, &number))
    return isfinite(number) ? cJSON_CreateNumber(number)
                            : cJSON_CreateString(value);
  if ((kind == KIND_ANY || kind == KIND_FLOAT) &&
      parse_float(value, &number))
    return isfinite(number) ? cJSON_CreateNumber(number)
                            : cJSON_CreateString(value);
  if (kind == KIND_FLOAT &&
      (strcmp(value, ".inf") == 0 || strcmp(value, "-.inf") == 0 ||
       strcmp(value, ".nan") == 0 || strcmp(value, ".NaN") == 0))
    return cJSON_CreateString(value);
  return kind == KIND_ANY ? cJSON_CreateString(value) : NULL;
}

static int check_text(builder *b, const yaml_event_t *e) {
  const char *value = (const char *)e->data.scalar.value;
  if (apig_utf8_count(value, e->data.scalar.length) < 0)
    return fail_at(b, &e->start_mark, "a string holds a NUL character",
                   NULL);
  return 0;
}

static int on_scalar(builder *b, const yaml_event_t *e) {
  if (check_text(b, e) != 0 || count_nodes(b, 1, &e->start_mark) != 0)
    return -1;
  const char *value = (const char *)e->data.scalar.value;
  const char *tag = (const char *)e->data.scalar.tag;
  frame *top = b->depth ? &b->stack[b->depth - 1] : NULL;
  if (top && cJSON_IsObject(top->node) && !top->pending_key) {
    top->pending_key = apig_strdup(value);
    if (!top->pending_key)
      return fail_at(b, &e->start_mark, "out of memory", NULL);
    const char *name = (const char *)e->data.scalar.anchor;
    return name && add_anchor(b, name, NULL, value) != 0 ? -1 : 0;
  }
  scalar_kind kind = tag_kind(tag);
  if (kind == KIND_BAD)
    return fail_at(b, &e->start_mark, "unsupported tag ", tag);
  if (kind == KIND_ANY && e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    kind = KIND_STR;
  cJSON *node = kind == KIND_STR ? cJSON_CreateString(value)
                                 : resolve(value, kind);
  if (!node)
    return fail_at(b, &e->start_mark, "value does not match its tag ", tag);
  const char *name = (const char *)e->data.scalar.anchor;
  if (place(b, node, &e->start_mark) != 0)
    return -1;
  if (name && add_anchor(b, name, node, value) != 0)
    return fail_at(b, &e->start_mark, "out of memory", NULL);
  return 0;
}

/* ---- collections and aliases ---- */

static int on_collection_start(builder *b, const yaml_event_t *e, int map) {
  const char *tag = (const char *)(map ? e->data.mapping_start.tag
                                       : e->data.sequence_start.tag);
  const char *name = (const char *)(map ? e->data.mapping_start.anchor
                                        : e->data.sequence_start.anchor);
  frame *top = b->depth ? &b->stack[b->depth - 1] : NULL;
  if (top && cJSON_IsObject(top->node) && !top->pending_key)
    return fail_at(b, &e->start_mark,
                   "a mapping key must be a scalar", NULL);
  if (tag && strcmp(tag, "!") != 0 &&
      strcmp(tag, map ? TAG_PREFIX "map" : TAG_PREFIX "seq") != 0)
    return fail_at(b, &e->start_mark, "unsupported tag ", tag);
  if (b->depth == MAX_DEPTH)
    return fail_at(b, &e->start_mark, "nesting is deeper than 512 levels",
                   NULL);
  if (count_nodes(b, 1, &e->start_mark) != 0)
    return -1;
  frame *f = &b->stack[b->depth];
  memset(f, 0, sizeof *f);
  f->node = map ? cJSON_CreateObject() : cJSON_CreateArray();
  f->anchor = name ? apig_strdup(name) : NULL;
  if (!f->node || (name && !f->anchor)) {
    cJSON_Delete(f->node);
    frame_clear(f);
    return fail_at(b, &e->start_mark, "out of memory", NULL);
  }
  b->depth++;
  return 0;
}

static int on_collection_end(builder *b, const yaml_event_t *e) {
  frame *f = &b->stack[--b->depth];
  cJSON *node = f->node;
  char *name = f->anchor;
  f->anchor = NULL;
  f->node = NULL;
  frame_clear(f);
  int rc = place(b, node, &e->start_mark);
  if (rc == 0 && name && add_anchor(b, name, node, NULL) != 0)
    rc = fail_at(b, &e->start_mark, "out of memory", NULL);
  apig_free(name);
  return rc;
}

static int on_alias(builder *b, const yaml_event_t *e) {
  const char *name = (const char *)e->data.alias.anchor;
  anchor *a;
  HASH_FIND_STR(b->anchors, name, a);
  for (int i = 0; !a && i < b->depth; i++)
    if (b->stack[i].anchor && strcmp(b->stack[i].anchor, name) == 0)
      return fail_at(b, &e->start_mark,
                     "alias to a node that contains it: *", name);
  if (!a)
    return fail_at(b, &e->start_mark, "undefined alias *", name);

  frame *top = b->depth ? &b->stack[b->depth - 1] : NULL;
  if (top && cJSON_IsObject(top->node) && !top->pending_key) {
    if (!a->text)
      return fail_at(b, &e->start_mark,
                     "a mapping key must be a scalar: *", name);
    top->pending_key = apig_strdup(a->text);
    return top->pending_key ? 0
                            : fail_at(b, &e->start_mark, "out of memory",
                                      NULL);
  }

  if (b->depth + a->height > MAX_DEPTH)
    return fail_at(b, &e->start_mark, "nesting is deeper than 512 levels",
                   NULL);
  if (count_nodes(b, a->size, &e->start_mark) != 0)
    return -1;
  /* An anchored mapping key is reused as a string. */
  cJSON *copy = a->node ? cJSON_Duplicate(a->node, 1)
                        : cJSON_CreateString(a->text);
  if (!copy)
    return fail_at(b, &e->start_mark, "out of memory", NULL);
  return place(b, copy, &e->start_mark);
}

static int on_event(builder *b, const yaml_event_t *e) {
  switch (e->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (b->documents++ > 0)
      return fail_at(b, &e->start_mark,
                     "the input holds more than one document", NULL);
    return 0;
  case YAML_SCALAR_EVENT:
    return on_scalar(b, e);
  case YAML_SEQUENCE_START_EVENT:
    return on_collection_start(b, e, 0);
  case YAML_MAPPING_START_EVENT:
    return on_collection_start(b, e, 1);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    return on_collection_end(b, e);
  case YAML_ALIAS_EVENT:
    return on_alias(b, e);
  default:
    return 0;
  }
}

cJSON *apig_yaml_parse(const char *text, size_t len, char *err,
                       size_t err_size) {
  static builder empty;
  builder *b = apig_malloc(sizeof *b);
  if (!b) {
    snprintf(err, err_size, "out of memory");
    return NULL;
  }
  *b = empty;
  b->err = err;
  b->err_size = err_size;
  b->max_nodes = len + 1024;
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, err_size, "out of memory");
    apig_free(b);
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  int rc = 0, done = 0;
  while (rc == 0 && !done) {
    yaml_event_t event;
    if (!yaml_parser_parse(&parser, &event)) {
      yaml_mark_t mark = parser.problem_mark;
      rc = fail_at(b, &mark, parser.problem ? parser.problem : "error",
                   NULL);
      break;
    }
    done = event.type == YAML_STREAM_END_EVENT;
    rc = on_event(b, &event);
    yaml_event_delete(&event);
  }
  yaml_parser_delete(&parser);
  cJSON *root = b->root;
  if (rc == 0 && b->documents == 0) {
    snprintf(err, err_size, "the input holds no YAML document");
    rc = -1;
  }
  if (rc != 0) {
    cJSON_Delete(root);
    root = NULL;
  }
  builder_free(b);
  apig_free(b);
  return root;
}
