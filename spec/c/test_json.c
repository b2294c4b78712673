/* Tests of apig_json_parse: structure, strings, UTF-8, nesting, duplicate
 * keys, buffer ends and speed on large bodies. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "json.h"
#include "testlib.h"

/* Parses a copy of bytes[0..len) in a heap block of exactly len bytes, so
 * AddressSanitizer reports any read past the end. */
static cJSON *parse_exact(const char *bytes, size_t len, char *err,
                          size_t err_size) {
  char *block = malloc(len);
  if (len)
    memcpy(block, bytes, len);
  cJSON *root = apig_json_parse(block, len, err, err_size);
  free(block);
  return root;
}

/* Checks that bytes[0..len) is rejected with exactly `expected`. */
static void reject_bytes(const char *bytes, size_t len, const char *expected,
                         int line) {
  char err[256] = "untouched";
  cJSON *root = parse_exact(bytes, len, err, sizeof err);
  CHECK(root == NULL);
  if (strcmp(err, expected) != 0)
    fprintf(stderr, "  input of line %d\n", line);
  CHECK_STR(err, expected);
  cJSON_Delete(root);
}

#define REJECT(text, expected)                                                 \
  reject_bytes(text, sizeof(text) - 1, expected, __LINE__)

static cJSON *accept_bytes(const char *bytes, size_t len, int line) {
  char err[256] = "";
  cJSON *root = parse_exact(bytes, len, err, sizeof err);
  if (!root)
    fprintf(stderr, "  input of line %d rejected: %s\n", line, err);
  CHECK(root != NULL);
  CHECK_STR(err, "");
  return root;
}

#define ACCEPT(text) accept_bytes(text, sizeof(text) - 1, __LINE__)

static double seconds_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) +
         (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void test_empty_and_whitespace(void) {
  REJECT("", "unexpected end of JSON input");
  REJECT(" \t\r\n ", "unexpected end of JSON input");
  REJECT("\f", "invalid byte 0x0C looking for beginning of value at offset 0");
  REJECT("\v1", "invalid byte 0x0B looking for beginning of value at offset 0");
  REJECT("\xEF\xBB\xBF{}",
         "invalid byte 0xEF looking for beginning of value at offset 0");

  char err[64] = "untouched";
  CHECK(apig_json_parse(NULL, 0, err, sizeof err) == NULL);
  CHECK_STR(err, "unexpected end of JSON input");
}

static void test_literals(void) {
  cJSON *root = ACCEPT("true");
  CHECK(cJSON_IsTrue(root));
  cJSON_Delete(root);
  root = ACCEPT(" false ");
  CHECK(cJSON_IsFalse(root));
  cJSON_Delete(root);
  root = ACCEPT("null\n");
  CHECK(cJSON_IsNull(root));
  cJSON_Delete(root);

  REJECT("tru", "unexpected end of JSON input");
  REJECT("nul", "unexpected end of JSON input");
  REJECT("trux",
         "invalid character 'x' in literal true (expecting 'e') at offset 3");
  REJECT("True",
         "invalid character 'T' looking for beginning of value at offset 0");
  REJECT("nulll", "invalid character 'l' after top-level value at offset 4");
  REJECT("NaN",
         "invalid character 'N' looking for beginning of value at offset 0");
}

static void test_numbers(void) {
  static const struct {
    const char *text;
    double value;
  } valid[] = {
      {"0", 0},       {"-0", 0},          {"7", 7},         {"-12", -12},
      {"1.5", 1.5},   {"1.5e10", 1.5e10}, {"-1E-2", -0.01}, {"1e+2", 100},
      {"0.25", 0.25}, {"[10]", 10},
  };
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
    cJSON *root = accept_bytes(valid[i].text, strlen(valid[i].text), __LINE__);
    const cJSON *number = cJSON_IsArray(root) ? root->child : root;
    CHECK(cJSON_IsNumber(number));
    if (number)
      CHECK(number->valuedouble == valid[i].value);
    cJSON_Delete(root);
  }

  REJECT("-", "unexpected end of JSON input");
  REJECT("1.", "unexpected end of JSON input");
  REJECT("1e", "unexpected end of JSON input");
  REJECT("1e-", "unexpected end of JSON input");
  REJECT("01", "invalid character '1' after top-level value at offset 1");
  REJECT("-a", "invalid character 'a' in numeric literal at offset 1");
  REJECT("1.e3",
         "invalid character 'e' after decimal point in numeric literal at "
         "offset 2");
  REJECT("1ex",
         "invalid character 'x' in exponent of numeric literal at offset 2");
  REJECT("+1",
         "invalid character '+' looking for beginning of value at offset 0");
  REJECT(".5",
         "invalid character '.' looking for beginning of value at offset 0");
  REJECT("0x10", "invalid character 'x' after top-level value at offset 1");
  REJECT("[1,2 3]", "invalid character '3' after array element at offset 5");

  char digits[80];
  memset(digits, '1', 63);
  cJSON_Delete(accept_bytes(digits, 63, __LINE__));
  memset(digits, '1', 64);
  reject_bytes(digits, 64, "number longer than 63 characters at offset 0",
               __LINE__);
}

static void test_structure(void) {
  cJSON *root = ACCEPT(" { \"a\" : [ 1 , { } , [ ] , \"x\" ] , \"b\" : { } } ");
  CHECK(cJSON_IsObject(root));
  CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "a")), 4);
  cJSON_Delete(root);

  root = ACCEPT("[]");
  CHECK(cJSON_IsArray(root));
  CHECK_INT(cJSON_GetArraySize(root), 0);
  cJSON_Delete(root);

  root = ACCEPT("\"x\"");
  CHECK(cJSON_IsString(root));
  cJSON_Delete(root);

  REJECT("{", "unexpected end of JSON input");
  REJECT("[", "unexpected end of JSON input");
  REJECT("{\"a\":", "unexpected end of JSON input");
  REJECT("{\"a\"", "unexpected end of JSON input");
  REJECT("{\"a\":1", "unexpected end of JSON input");
  REJECT("[1,", "unexpected end of JSON input");
  REJECT("{\"a\" 1}", "invalid character '1' after object key at offset 5");
  REJECT("{\"a\":1,}",
         "invalid character '}' looking for beginning of object key string at "
         "offset 7");
  REJECT("{1:2}",
         "invalid character '1' looking for beginning of object key string at "
         "offset 1");
  REJECT("{'a':1}",
         "invalid byte 0x27 looking for beginning of object key string at "
         "offset 1");
  REJECT("{\"a\":1 \"b\":2}",
         "invalid character '\"' after object key:value pair at offset 7");
  REJECT("[1,]",
         "invalid character ']' looking for beginning of value at offset 3");
  REJECT("[1}", "invalid character '}' after array element at offset 2");
  REJECT("{\"a\":1]",
         "invalid character ']' after object key:value pair at offset 6");
  REJECT("]", "invalid character ']' looking for beginning of value at "
              "offset 0");
}

static void test_trailing_data(void) {
  REJECT("{\"apis\":[\"a1\"]}xyz",
         "invalid character 'x' after top-level value at offset 15");
  REJECT("{\"a\":1}}}}}",
         "invalid character '}' after top-level value at offset 7");
  REJECT("{\"a\":1}{\"apis\":[\"a2\"]}",
         "invalid character '{' after top-level value at offset 7");
  REJECT("{\"a\":1} \n{\"b\":2}",
         "invalid character '{' after top-level value at offset 9");
  REJECT("{\"a\":1}\0", "invalid byte 0x00 after top-level value at offset 7");
  REJECT("{\"a\":1}\xFF",
         "invalid byte 0xFF after top-level value at offset 7");
  REJECT("\"a\" \"b\"",
         "invalid character '\"' after top-level value at offset 4");

  cJSON *root = ACCEPT("{\"a\":1} \r\n\t ");
  CHECK(cJSON_IsObject(root));
  cJSON_Delete(root);
}

static char *repeat_brackets(const char *prefix, size_t count, size_t *len) {
  size_t prefix_len = strlen(prefix);
  char *text = malloc(prefix_len + count);
  memcpy(text, prefix, prefix_len);
  memset(text + prefix_len, '[', count);
  *len = prefix_len + count;
  return text;
}

static void test_nesting(void) {
  size_t len;
  char *text = repeat_brackets("{\"apis\":", 100000, &len);
  /* The object is level 1, so the 512th '[' (offset 8 + 511) is level 513. */
  reject_bytes(text, len, "nesting deeper than 512 at offset 519", __LINE__);
  free(text);

  char deep[2 * 513];
  memset(deep, '[', 512);
  memset(deep + 512, ']', 512);
  cJSON *root = accept_bytes(deep, 1024, __LINE__);
  CHECK(cJSON_IsArray(root));
  cJSON_Delete(root);

  memset(deep, '[', 513);
  memset(deep + 513, ']', 513);
  reject_bytes(deep, 1026, "nesting deeper than 512 at offset 512", __LINE__);

  text = repeat_brackets("", 1000000, &len);
  reject_bytes(text, len, "nesting deeper than 512 at offset 512", __LINE__);
  free(text);
}

static void test_string_escapes(void) {
  cJSON *root = ACCEPT("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
  CHECK_STR(cJSON_GetStringValue(root), "\"\\/\b\f\n\r\t");
  cJSON_Delete(root);

  root = ACCEPT("\"\\u0041\\u00e9\\u53D1\"");
  CHECK_STR(cJSON_GetStringValue(root), "A\xC3\xA9\xE5\x8F\x91");
  cJSON_Delete(root);

  /* U+1F600 as a surrogate pair, and U+10FFFF, the last code point. */
  root = ACCEPT("\"\\uD83D\\uDE00|\\uDBFF\\uDFFF\"");
  CHECK_STR(cJSON_GetStringValue(root), "\xF0\x9F\x98\x80|\xF4\x8F\xBF\xBF");
  cJSON_Delete(root);

  REJECT("\"\\x\"", "invalid character 'x' in string escape code at offset 2");
  REJECT("\"\\U0041\"",
         "invalid character 'U' in string escape code at offset 2");
  REJECT("\"\\'\"", "invalid byte 0x27 in string escape code at offset 2");
  REJECT("{\"remark\":\"\\uX000\"}",
         "invalid character 'X' in \\u hexadecimal character escape at "
         "offset 13");
  REJECT("\"\\u12g4\"",
         "invalid character 'g' in \\u hexadecimal character escape at "
         "offset 5");
  REJECT("\"abc", "unexpected end of JSON input");
  REJECT("\"abc\\", "unexpected end of JSON input");
  REJECT("\"\\u12", "unexpected end of JSON input");
  REJECT("\"\\uD800", "unexpected end of JSON input");
  REJECT("\"\\uD800\\", "unexpected end of JSON input");
}

static void test_nul_in_strings(void) {
  REJECT("{\"apis\":[\"a1\\u0000junk\"]}",
         "string contains \\u0000 at offset 12");
  REJECT("{\"env_id\":\"RELEASE\\u0000x\"}",
         "string contains \\u0000 at offset 18");
  REJECT("{\"a\\u0000b\":1}", "string contains \\u0000 at offset 3");
  REJECT("{\"a\":\"x\0y\"}", "invalid byte 0x00 in string literal at offset 7");
  REJECT("\"tab\there\"", "invalid byte 0x09 in string literal at offset 4");
  REJECT("\"line\nbreak\"", "invalid byte 0x0A in string literal at offset 5");
  REJECT("\"\x1F\"", "invalid byte 0x1F in string literal at offset 1");

  /* DEL (0x7F) is not a control character in JSON. */
  cJSON *root = ACCEPT("\"\x7F\"");
  CHECK_STR(cJSON_GetStringValue(root), "\x7F");
  cJSON_Delete(root);
}

static void test_lone_surrogates(void) {
  REJECT("{\"remark\":\"\\uD800\"}", "lone surrogate \\uD800 at offset 11");
  REJECT("{\"remark\":\"\\uDC00x\"}", "lone surrogate \\uDC00 at offset 11");
  REJECT("\"\\uDBFFx\\uDC00\"", "lone surrogate \\uDBFF at offset 1");
  REJECT("\"\\uD800\\u0041\"", "lone surrogate \\uD800 at offset 1");
  REJECT("\"\\uD800\\uD800\"", "lone surrogate \\uD800 at offset 1");
  REJECT("\"\\uDE00\\uD83D\"", "lone surrogate \\uDE00 at offset 1");
  REJECT("\"\\ud800\\n\"", "lone surrogate \\uD800 at offset 1");
  REJECT("\"\\uD800\\uDC0G\"",
         "invalid character 'G' in \\u hexadecimal character escape at "
         "offset 12");
}

static void test_invalid_utf8(void) {
  REJECT("{\"remark\":\"\xC3\x28\"}", "invalid UTF-8 at offset 11");
  REJECT("{\"remark\":\"\xED\xA0\x80\"}", "invalid UTF-8 at offset 11");
  REJECT("{\"remark\":\"\xC0\x80\"}", "invalid UTF-8 at offset 11");
  REJECT("{\"remark\":\"\xF5\x80\x80\x80\"}", "invalid UTF-8 at offset 11");
  REJECT("{\"remark\":\"\xFF\"}", "invalid UTF-8 at offset 11");
  REJECT("\"ok\xE0\x80\x80\"", "invalid UTF-8 at offset 3");
  REJECT("\"\xF0\x80\x80\x80\"", "invalid UTF-8 at offset 1");
  REJECT("\"\xF4\x90\x80\x80\"", "invalid UTF-8 at offset 1");
  REJECT("\"\x80\"", "invalid UTF-8 at offset 1");
  REJECT("\"\xE5\x8F\"", "invalid UTF-8 at offset 1");
  REJECT("\"\xE5\x8F", "invalid UTF-8 at offset 1");
  REJECT("\"\xF0\x9F\x98", "invalid UTF-8 at offset 1");
  REJECT("{\"\xC3\":1}", "invalid UTF-8 at offset 2");
  REJECT("[\xC3\xA9]",
         "invalid byte 0xC3 looking for beginning of value at offset 1");
}

static void test_valid_utf8(void) {
  /* 发 (U+53D1), é, the emoji U+1F600 and U+10FFFF as raw bytes. */
  const char text[] = "{\"remark\":\"\xE5\x8F\x91\xC3\xA9\xF0\x9F\x98\x80"
                      "\xF4\x8F\xBF\xBF\xEE\x80\x80\"}";
  cJSON *root = ACCEPT(text);
  const cJSON *remark = cJSON_GetObjectItemCaseSensitive(root, "remark");
  CHECK_STR(cJSON_GetStringValue(remark),
            "\xE5\x8F\x91\xC3\xA9\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xEE\x80\x80");
  cJSON_Delete(root);

  /* 255 times 发, escaped and raw, decode to the same 765 bytes. */
  char raw[2 + 255 * 3 + 1], escaped[2 + 255 * 6 + 1], expected[255 * 3 + 1];
  size_t r = 0, e = 0;
  raw[r++] = '"';
  escaped[e++] = '"';
  for (int i = 0; i < 255; i++) {
    memcpy(raw + r, "\xE5\x8F\x91", 3);
    memcpy(expected + i * 3, "\xE5\x8F\x91", 3);
    memcpy(escaped + e, "\\u53d1", 6);
    r += 3;
    e += 6;
  }
  raw[r++] = '"';
  escaped[e++] = '"';
  expected[255 * 3] = '\0';

  root = accept_bytes(raw, r, __LINE__);
  CHECK_STR(cJSON_GetStringValue(root), expected);
  cJSON_Delete(root);
  root = accept_bytes(escaped, e, __LINE__);
  CHECK_STR(cJSON_GetStringValue(root), expected);
  cJSON_Delete(root);
}

static void test_duplicate_keys(void) {
  REJECT("{\"apis\":[\"a1\"],\"apis\":[\"a2\"]}", "duplicate key \"apis\"");
  REJECT("{\"a\":{\"b\":1,\"c\":2,\"b\":3}}", "duplicate key \"b\"");
  REJECT("[1,{\"x\":[{\"y\":1,\"y\":1}]}]", "duplicate key \"y\"");
  REJECT("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\"");
  REJECT("{\"\xC3\xA9\":1,\"\\u00e9\":2}", "duplicate key \"\xC3\xA9\"");
  REJECT("{\"q\\\"\\\\\\n\":1,\"q\\\"\\\\\\n\":2}",
         "duplicate key \"q\\\"\\\\\\u000A\"");
  REJECT("{\"\":1,\"\":2}", "duplicate key \"\"");

  cJSON *root = ACCEPT("{\"a\":1,\"A\":2,\"a \":3,\"b\":{\"a\":4}}");
  CHECK_INT(cJSON_GetArraySize(root), 4);
  cJSON_Delete(root);
  root = ACCEPT("[{\"x\":1},{\"x\":2}]");
  cJSON_Delete(root);
}

static void test_duplicate_key_shown_cut(void) {
  /* 30 ASCII bytes then 发 repeated: the message stops on a character
   * boundary within 64 bytes and marks the cut. */
  char key[30 + 20 * 3 + 1];
  memset(key, 'k', 30);
  for (int i = 0; i < 20; i++)
    memcpy(key + 30 + i * 3, "\xE5\x8F\x91", 3);
  key[90] = '\0';

  char text[256];
  snprintf(text, sizeof text, "{\"%s\":1,\"%s\":2}", key, key);
  char expected[128];
  /* 30 + 11 * 3 = 63 bytes fit; the 12th 发 would end at byte 66. */
  snprintf(expected, sizeof expected, "duplicate key \"%.63s...\"", key);
  reject_bytes(text, strlen(text), expected, __LINE__);
}

/* Builds {"k0":0,"k1":1,...} with `count` keys, the last one repeating the
 * key of entry `repeat` when repeat < count. */
static char *build_object(size_t count, size_t repeat, size_t *len) {
  char *text = malloc(count * 24 + 2);
  size_t out = 0;
  text[out++] = '{';
  for (size_t i = 0; i < count; i++) {
    size_t name = (i == count - 1 && repeat < count) ? repeat : i;
    out += (size_t)sprintf(text + out, "%s\"k%zu\":%zu", i ? "," : "", name, i);
  }
  text[out++] = '}';
  *len = out;
  return text;
}

static void test_duplicate_keys_sizes(void) {
  /* 16 keys are compared pairwise, 17 and more through the sort. */
  static const size_t counts[] = {2, 15, 16, 17, 18, 100, 1000};
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    size_t len;
    char *text = build_object(counts[c], counts[c], &len);
    cJSON *root = accept_bytes(text, len, __LINE__);
    CHECK_INT(cJSON_GetArraySize(root), counts[c]);
    cJSON_Delete(root);
    free(text);

    text = build_object(counts[c], 0, &len);
    reject_bytes(text, len, "duplicate key \"k0\"", __LINE__);
    free(text);
  }
}

/* Host allocator that fails every request after the first `budget`. */
typedef struct failing_allocator {
  size_t budget;
  size_t used;
} failing_allocator;

static void *failing_realloc(void *ud, void *ptr, size_t size) {
  failing_allocator *state = ud;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  if (state->used == state->budget)
    return NULL;
  state->used++;
  return realloc(ptr, size);
}

static void *hook_malloc(size_t size) { return apig_malloc(size); }

/* Makes each allocation of one parse fail in turn: every attempt either
 * returns the whole tree or NULL with a message, and leaks nothing. */
static void test_allocation_failures(void) {
  cJSON_Hooks hooks = {hook_malloc, apig_free};
  cJSON_InitHooks(&hooks);

  size_t len;
  char *text = build_object(20, 20, &len);
  size_t failures = 0;
  int parsed = 0, tree_failures = 0;
  char first[128] = "", last[128] = "";
  for (size_t budget = 0; budget < 1000 && !parsed; budget++) {
    failing_allocator state = {budget, 0};
    apig_allocator allocator = {failing_realloc, &state};
    const apig_allocator *previous = apig_alloc_enter(&allocator);
    char err[128] = "";
    cJSON *root = apig_json_parse(text, len, err, sizeof err);
    apig_alloc_leave(previous);

    if (!root) {
      failures++;
      CHECK(err[0] != '\0');
      CHECK(apig_json_out_of_memory(err));
      snprintf(failures == 1 ? first : last, sizeof first, "%s", err);
      if (strncmp(err, "out of memory building the JSON tree at offset ",
                  47) == 0)
        tree_failures++;
      continue;
    }
    parsed = 1;
    CHECK_INT(cJSON_GetArraySize(root), 20);
    CHECK_STR(err, "");
    apig_alloc_enter(&allocator);
    cJSON_Delete(root);
    apig_alloc_leave(previous);
  }
  free(text);
  cJSON_InitHooks(NULL);

  CHECK(parsed);
  /* At least the copy, the object, 20 items, 20 keys and the key array;
   * some cJSON builds also allocate a buffer for each number. */
  CHECK(failures >= 43);
  CHECK(tree_failures >= 40);
  char invalid[128];
  CHECK(apig_json_parse("{", 1, invalid, sizeof invalid) == NULL);
  CHECK(!apig_json_out_of_memory(invalid));
  CHECK_STR(first, "out of memory copying the JSON input");
  CHECK_STR(last, "out of memory checking duplicate keys");
}

static void test_large_object(void) {
  size_t len;
  char *text = build_object(300000, 300000, &len);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  cJSON *root = accept_bytes(text, len, __LINE__);
  double unique = seconds_since(&start);
  CHECK_INT(cJSON_GetArraySize(root), 300000);
  cJSON_Delete(root);
  free(text);

  text = build_object(300000, 123456, &len);
  clock_gettime(CLOCK_MONOTONIC, &start);
  reject_bytes(text, len, "duplicate key \"k123456\"", __LINE__);
  double repeated = seconds_since(&start);
  free(text);

  printf("object of 300000 keys (%zu bytes): unique %.1f ms, with a "
         "duplicate %.1f ms\n",
         len, unique * 1e3, repeated * 1e3);
  /* A pairwise check would make about 4.5e10 key comparisons here. */
  CHECK(unique < 5.0);
  CHECK(repeated < 5.0);
}

/* Builds {"apis":["a","a",...]} with `count` one-letter strings. */
static char *build_id_array(size_t count, size_t *len) {
  char *text = malloc(count * 4 + 16);
  size_t out = 0;
  memcpy(text, "{\"apis\":[", 9);
  out = 9;
  for (size_t i = 0; i < count; i++) {
    if (i)
      text[out++] = ',';
    memcpy(text + out, "\"a\"", 3);
    out += 3;
  }
  memcpy(text + out, "]}", 2);
  out += 2;
  *len = out;
  return text;
}

static void test_large_array(void) {
  size_t len;
  char *text = build_id_array(300000, &len);

  /* A trailing byte makes the scan read everything and then fail, so this
   * times the scan alone, without cJSON. */
  char *with_garbage = malloc(len + 1);
  memcpy(with_garbage, text, len);
  with_garbage[len] = 'x';
  char expected[80];
  snprintf(expected, sizeof expected,
           "invalid character 'x' after top-level value at offset %zu", len);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  reject_bytes(with_garbage, len + 1, expected, __LINE__);
  double scan = seconds_since(&start);
  free(with_garbage);

  clock_gettime(CLOCK_MONOTONIC, &start);
  cJSON *root = accept_bytes(text, len, __LINE__);
  double full = seconds_since(&start);
  const cJSON *apis = cJSON_GetObjectItemCaseSensitive(root, "apis");
  CHECK_INT(cJSON_GetArraySize(apis), 300000);
  cJSON_Delete(root);
  free(text);

  printf("array of 300000 strings (%zu bytes): scan %.2f ms, full parse "
         "%.2f ms\n",
         len, scan * 1e3, full * 1e3);
  CHECK(scan < 1.0);
  CHECK(full < 5.0);
}

/* Every prefix of a valid body is rejected and the whole body accepted,
 * each parsed from a block that ends exactly where the input ends. */
static void test_prefixes_end_at_buffer_end(void) {
  static const char *bodies[] = {
      "{\"apis\":[\"a1\",\"a2\"],\"env_id\":\"e1\",\"remark\":\"\xE5\x8F\x91"
      "\\uD83D\\uDE00\\n\",\"n\":-1.25e+3,\"t\":true,\"f\":false,"
      "\"z\":null,\"o\":{},\"l\":[]}",
      "[0,-0.5,1E9,\"\\u00e9\\\\\\\"\",[[[]]]]",
      "12345",
      "\"\xF0\x9F\x98\x80\"",
  };
  for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
    size_t len = strlen(bodies[b]);
    for (size_t cut = 0; cut < len; cut++) {
      char err[256] = "";
      cJSON *root = parse_exact(bodies[b], cut, err, sizeof err);
      /* A number is complete at each of its digits. */
      int number_prefix = b == 2 && cut > 0;
      if (number_prefix) {
        CHECK(root != NULL);
      } else {
        CHECK(root == NULL);
        CHECK(err[0] != '\0');
      }
      cJSON_Delete(root);
    }
    cJSON_Delete(accept_bytes(bodies[b], len, __LINE__));
  }
}

static void test_error_buffer(void) {
  CHECK(apig_json_parse("[1,]", 4, NULL, 0) == NULL);
  char small[8] = "xxxxxxx";
  CHECK(apig_json_parse("[1,]", 4, small, 0) == NULL);
  CHECK_STR(small, "xxxxxxx");
  CHECK(apig_json_parse("[1,]", 4, small, sizeof small) == NULL);
  CHECK_STR(small, "invalid");

  char err[32] = "stale";
  cJSON *root = apig_json_parse("{}", 2, err, sizeof err);
  CHECK(root != NULL);
  CHECK_STR(err, "");
  cJSON_Delete(root);
}

int main(void) {
  test_empty_and_whitespace();
  test_literals();
  test_numbers();
  test_structure();
  test_trailing_data();
  test_nesting();
  test_string_escapes();
  test_nul_in_strings();
  test_lone_surrogates();
  test_invalid_utf8();
  test_valid_utf8();
  test_duplicate_keys();
  test_duplicate_key_shown_cut();
  test_duplicate_keys_sizes();
  test_large_object();
  test_large_array();
  test_prefixes_end_at_buffer_end();
  test_error_buffer();
  test_allocation_failures();
  return test_report("test_json");
}
