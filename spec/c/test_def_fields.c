/* Field extraction from API definitions: for each text, the result must be
 * what cJSON_GetObjectItemCaseSensitive gives on cJSON's own tree, whether
 * the text takes the direct walk or the cJSON way. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "def_fields.h"
#include "testlib.h"

static const char *const names[APIG_FIELD_COUNT] = {
    "name",   "req_method",   "req_uri", "auth_type",
    "req_protocol", "backend_type", "remark"};

/* Checks one text against cJSON. */
static void check_text(const char *def) {
  apig_def_fields got;
  int rc = apig_def_fields_read(&got, def, strlen(def));
  cJSON *obj = cJSON_Parse(def);
  if (!cJSON_IsObject(obj)) {
    if (rc != -1)
      fprintf(stderr, "not an object, yet read: %s\n", def);
    CHECK_INT(rc, -1);
    cJSON_Delete(obj);
    return;
  }
  CHECK_INT(rc, 0);
  for (int i = 0; rc == 0 && i < APIG_FIELD_COUNT; i++) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, names[i]);
    const char *want = cJSON_IsString(item) ? item->valuestring : NULL;
    const char *have = got.value[i];
    int same = want ? have && strcmp(want, have) == 0 : have == NULL;
    if (!same)
      fprintf(stderr, "%s: \"%s\" instead of \"%s\" in %s\n", names[i],
              have ? have : "(null)", want ? want : "(null)", def);
    CHECK(same);
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
  if (rc == 0)
    CHECK_INT(got.type, cJSON_IsNumber(type) ? type->valueint : 0);
  cJSON_Delete(obj);
  apig_free(got.text);
}

static const char *const texts[] = {
    "{\"name\":\"a\",\"req_method\":\"GET\",\"req_uri\":\"/a\",\"type\":1}",
    "  {\n \"name\" : \"spaced\" ,\t\"type\" : 2 }  ",
    "{}",
    "{\"name\":\"\"}",
    /* escapes in a wanted string, in a key, and in an unwanted string */
    "{\"name\":\"tab\\there\",\"remark\":\"q\\\"uote\"}",
    "{\"na\\u006de\":\"escaped key\",\"req_uri\":\"/x\"}",
    "{\"other\":\"a\\\\b\\\"c\",\"name\":\"after escapes\"}",
    "{\"remark\":\"\\u00e9t\\u00e9\",\"name\":\"n\"}",
    /* repeated keys: the first wins */
    "{\"name\":\"first\",\"name\":\"second\",\"type\":3,\"type\":4}",
    "{\"type\":\"text\",\"type\":5,\"name\":\"n\"}",
    /* a repeated key whose first value is not a string */
    "{\"name\":1,\"name\":\"later\"}",
    "{\"name\":null,\"name\":\"later\"}",
    "{\"remark\":{},\"remark\":\"r2\"}",
    "{\"req_uri\":[\"/a\"],\"req_uri\":\"/b\"}",
    /* wanted names only count at the top level */
    "{\"mock_info\":{\"name\":\"inner\",\"remark\":[\"x\",{\"name\":1}]},"
    "\"name\":\"outer\"}",
    "{\"list\":[[],{},[{\"req_uri\":\"/in\"}]],\"req_uri\":\"/out\"}",
    /* values of other types under wanted names */
    "{\"name\":1,\"req_method\":null,\"req_uri\":true,\"auth_type\":[],"
    "\"remark\":{},\"backend_type\":false}",
    /* type as numbers of every shape */
    "{\"type\":-7}",
    "{\"type\":0}",
    "{\"type\":-0}",
    "{\"type\":1.5}",
    "{\"type\":1e2}",
    "{\"type\":2E-1}",
    "{\"type\":123456789}",
    "{\"type\":1234567890}",
    "{\"type\":99999999999999999999}",
    "{\"type\":-99999999999999999999}",
    "{\"type\":true}",
    /* strings with brackets and quotes that the walk must not miscount */
    "{\"a\":\"}{][\",\"name\":\"brackets\"}",
    "{\"a\":{\"b\":\"\\\"}\"},\"name\":\"quoted brace\"}",
    "{\"name\":\"multi\\nline\"}",
    "{\"name\":\"caf\xc3\xa9\"}",
    /* not objects, or not JSON */
    "[\"name\"]",
    "\"name\"",
    "",
    "{\"name\":\"unterminated}",
    "{\"name\" \"no colon\"}",
    "{\"name\":\"a\"} trailing",
    "{\"name\":\"a\",}",
    "{\"type\":007,\"name\":\"leading zeros\"}",
};

int main(void) {
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    check_text(texts[i]);
  return test_report("test_def_fields");
}
