/* Tests of apig_yaml_parse: core schema scalars, keys, tags, anchors and
 * aliases, duplicate keys, nesting and error reports. */
#include <stdlib.h>
#include <string.h>

#include "apig_yaml.h"
#include "json.h"
#include "testlib.h"

/* Parses a copy of text in a heap block of exactly its length, so
 * AddressSanitizer reports any read past the end. */
static cJSON *parse(const char *text, char *err, size_t err_size) {
  size_t len = strlen(text);
  char *block = malloc(len ? len : 1);
  memcpy(block, text, len);
  cJSON *root = apig_yaml_parse(block, len, err, err_size);
  free(block);
  return root;
}

/* Checks that yaml parses to the same tree as the JSON text. */
static void same_as_json(const char *yaml, const char *json, int line) {
  char err[256] = "";
  cJSON *got = parse(yaml, err, sizeof err);
  cJSON *want = apig_json_parse(json, strlen(json), err + 128, 128);
  CHECK(want != NULL);
  int same = got && want && cJSON_Compare(got, want, 1);
  if (!same) {
    char *text = got ? cJSON_PrintUnformatted(got) : NULL;
    fprintf(stderr, "  line %d: got %s (%s), expected %s\n", line,
            text ? text : "NULL", err, json);
    free(text);
  }
  CHECK(same);
  cJSON_Delete(got);
  cJSON_Delete(want);
}

#define SAME(yaml, json) same_as_json(yaml, json, __LINE__)

/* Checks that yaml is rejected with a reason that contains `part`. */
static void rejected(const char *yaml, const char *part, int line) {
  char err[256] = "";
  cJSON *got = parse(yaml, err, sizeof err);
  CHECK(got == NULL);
  if (!strstr(err, part))
    fprintf(stderr, "  line %d: reason \"%s\" lacks \"%s\"\n", line, err,
            part);
  CHECK(strstr(err, part) != NULL);
  cJSON_Delete(got);
}

#define REJECTED(yaml, part) rejected(yaml, part, __LINE__)

static void test_core_schema(void) {
  SAME("a: ~\nb: null\nc: Null\nd: NULL\ne:\n",
       "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null}");
  SAME("[true, True, TRUE, false, False, FALSE]",
       "[true,true,true,false,false,false]");
  SAME("[0, -17, +4, 0o17, 0x1F, 0xff]", "[0,-17,4,15,31,255]");
  SAME("[1.5, .5, -2.5E-3, 1e3, 3.]", "[1.5,0.5,-0.0025,1000,3]");
  /* YAML 1.1 spellings are plain strings under the 1.2 core schema. */
  SAME("[yes, no, on, off, y, n, 0b11, 1_000, 012e]",
       "[\"yes\",\"no\",\"on\",\"off\",\"y\",\"n\",\"0b11\",\"1_000\","
       "\"012e\"]");
  SAME("[.inf, -.inf, .nan, 1e999]", "[\".inf\",\"-.inf\",\".nan\","
                                     "\"1e999\"]");
}

static void test_strings(void) {
  SAME("['true', \"12\", 'null', \"\"]", "[\"true\",\"12\",\"null\",\"\"]");
  SAME("text: |\n  line one\n  line two\n",
       "{\"text\":\"line one\\nline two\\n\"}");
  SAME("text: >\n  folded\n  words\n", "{\"text\":\"folded words\\n\"}");
  SAME("s: \"\\u00e9\\u53d1 \\U0001F600\"",
       "{\"s\":\"\\u00e9\\u53d1 \\ud83d\\ude00\"}");
  SAME("s: plain text:with a colon # and a comment",
       "{\"s\":\"plain text:with a colon\"}");
}

static void test_keys(void) {
  SAME("200: ok\ntrue: yes\n~: n\n1.5: f\n",
       "{\"200\":\"ok\",\"true\":\"yes\",\"~\":\"n\",\"1.5\":\"f\"}");
  SAME("'quoted key': 1\n\"k\\tx\": 2\n", "{\"quoted key\":1,\"k\\tx\":2}");
  REJECTED("? [a, b]\n: c\n", "a mapping key must be a scalar");
  REJECTED("? {a: 1}\n: c\n", "a mapping key must be a scalar");
}

static void test_duplicate_keys(void) {
  REJECTED("a: 1\nb: 2\na: 3\n", "duplicate key a");
  REJECTED("top:\n  x: 1\n  x: 2\n", "duplicate key x");
  REJECTED("{\"200\": a, 200: b}", "duplicate key 200");
  REJECTED("- &k name\n- {name: 1, *k : 2}\n", "duplicate key name");
  /* The same key in two different mappings is fine. */
  SAME("a: {x: 1}\nb: {x: 2}\n", "{\"a\":{\"x\":1},\"b\":{\"x\":2}}");
}

static void test_tags(void) {
  SAME("[!!str 123, !!str true, ! 42, !!int \"7\", !!float 1, !!null '']",
       "[\"123\",\"true\",\"42\",7,1,null]");
  SAME("!!map {a: !!seq [1]}", "{\"a\":[1]}");
  REJECTED("a: !!bool yes\n", "value does not match its tag");
  REJECTED("a: !!int 1.5\n", "value does not match its tag");
  REJECTED("a: !custom x\n", "unsupported tag !custom");
  REJECTED("a: !!set {x}\n", "unsupported tag tag:yaml.org,2002:set");
  REJECTED("a: !!binary aGk=\n", "unsupported tag");
}

static void test_anchors(void) {
  SAME("base: &b {x: 1, y: [2, 3]}\ncopy: *b\n",
       "{\"base\":{\"x\":1,\"y\":[2,3]},\"copy\":{\"x\":1,\"y\":[2,3]}}");
  SAME("- &v 5\n- *v\n- &v six\n- *v\n", "[5,5,\"six\",\"six\"]");
  SAME("&k name: *k\n", "{\"name\":\"name\"}");
  REJECTED("a: *missing\n", "undefined alias *missing");
  REJECTED("a: &self [1, *self]\n", "alias to a node that contains it");
  REJECTED("a: &m {b: *m}\n", "alias to a node that contains it");
  REJECTED("x: &c [1]\n*c : 2\n", "a mapping key must be a scalar");
}

/* Nine levels of ten aliases each: 10^9 nodes if expanded. */
static void test_alias_bomb(void) {
  char text[2048];
  size_t n = (size_t)snprintf(text, sizeof text, "a0: &a0 [x]\n");
  for (int level = 1; level <= 9; level++) {
    n += (size_t)snprintf(text + n, sizeof text - n, "a%d: &a%d [", level,
                          level);
    for (int i = 0; i < 10; i++)
      n += (size_t)snprintf(text + n, sizeof text - n, "%s*a%d",
                            i ? ", " : "", level - 1);
    n += (size_t)snprintf(text + n, sizeof text - n, "]\n");
  }
  REJECTED(text, "too many nodes");
}

static void nested(char *out, int depth) {
  memset(out, '[', (size_t)depth);
  memset(out + depth, ']', (size_t)depth);
  out[2 * depth] = '\0';
}

static void test_depth(void) {
  char *text = malloc(2 * 100000 + 1);
  nested(text, 512);
  char err[256] = "";
  cJSON *root = parse(text, err, sizeof err);
  CHECK(root != NULL);
  cJSON_Delete(root);
  nested(text, 513);
  REJECTED(text, "nesting is deeper than 512 levels");
  nested(text, 100000);
  REJECTED(text, "nesting is deeper than 512 levels");
  /* An alias may not carry a deep node deeper than the limit. */
  SAME("a: &d [[[1]]]\nb: [*d]\n", "{\"a\":[[[1]]],\"b\":[[[[1]]]]}");
  free(text);
}

static void test_documents(void) {
  SAME("---\na: 1\n...\n", "{\"a\":1}");
  SAME("%YAML 1.2\n---\n[1]\n", "[1]");
  SAME("---\n", "null");
  SAME("# only a comment\n---\n{}\n", "{}");
  REJECTED("", "no YAML document");
  REJECTED("# nothing\n", "no YAML document");
  REJECTED("a: 1\n---\nb: 2\n", "more than one document");
}

static void test_errors(void) {
  REJECTED("a: 1\nb: [1, 2\n", "invalid YAML at line 3");
  REJECTED("a: b: c\n", "line 1, column 5");
  REJECTED("a: \"x\\0y\"\n", "a string holds a NUL character");
  REJECTED("a: \"\\ud800\"\n", "invalid YAML");
  REJECTED("a: \"\xc3\x28\"\n", "invalid YAML");
  REJECTED("a: \"\xed\xa0\x80\"\n", "invalid YAML");
  REJECTED("\tkey: 1\n", "invalid YAML");
}

/* Larger documents: an OpenAPI skeleton with many paths. */
static void test_openapi_shape(void) {
  const char *yaml =
      "openapi: 3.0.0\n"
      "info:\n  title: Pets\n  version: '1.0'\n"
      "paths:\n"
      "  /pets/{id}:\n"
      "    get:\n      operationId: getPet\n"
      "      responses:\n        '200': {description: ok}\n"
      "        404:\n          description: missing\n"
      "    delete:\n      summary: Remove\n";
  SAME(yaml,
       "{\"openapi\":\"3.0.0\",\"info\":{\"title\":\"Pets\",\"version\":"
       "\"1.0\"},\"paths\":{\"/pets/{id}\":{\"get\":{\"operationId\":"
       "\"getPet\",\"responses\":{\"200\":{\"description\":\"ok\"},"
       "\"404\":{\"description\":\"missing\"}}},\"delete\":{\"summary\":"
       "\"Remove\"}}}}");
  /* 20000 keys in one mapping: duplicate detection stays fast. */
  size_t cap = 20000 * 24;
  char *big = malloc(cap);
  size_t n = 0;
  for (int i = 0; i < 20000; i++)
    n += (size_t)snprintf(big + n, cap - n, "key%d: %d\n", i, i);
  char err[256] = "";
  cJSON *root = parse(big, err, sizeof err);
  CHECK(root != NULL);
  CHECK_INT(cJSON_GetArraySize(root), 20000);
  CHECK_INT(cJSON_GetObjectItem(root, "key19999")->valueint, 19999);
  cJSON_Delete(root);
  free(big);
}

int main(void) {
  test_core_schema();
  test_strings();
  test_keys();
  test_duplicate_keys();
  test_tags();
  test_anchors();
  test_alias_bomb();
  test_depth();
  test_documents();
  test_errors();
  test_openapi_shape();
  return test_report("test_yaml");
}
