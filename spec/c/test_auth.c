/* Tests of authentication: SDK-HMAC-SHA256 signatures, credentials files,
 * token and AK/SK checks, projects and permissions. */
#define _POSIX_C_SOURCE 200809L /* fileno, mkdtemp */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "auth.h"
#include "testlib.h"

#define NS_PER_S INT64_C(1000000000)
#define DATE_2006 INT64_C(1136214245) /* 20060102T150405Z */
#define DATE_2020 INT64_C(1591583940) /* 20200608T023900Z */

static apig_header hdr(const char *name, const char *value) {
  return (apig_header){name, strlen(name), value, strlen(value)};
}

static char sig[65];

/* Signs with the SK of the published test vectors. Returns the signature,
 * or "" when signing failed. */
static const char *sign(const char *method, const char *path,
                        const char *query, const apig_header *headers,
                        size_t count, const char *signed_headers,
                        const char *date, const char *body,
                        const char *content_sha256) {
  if (apig_sign("SecretKey", method, path, strlen(path), query,
                strlen(query), headers, count, signed_headers, date, body,
                strlen(body), content_sha256, sig) != 0)
    return "";
  return sig;
}

static void test_vectors(void) {
  apig_header v1[] = {hdr("X-Sdk-Date", "20060102T150405Z"),
                      hdr("TEST_UNDERSCORE", "TEST_VALUE")};
  CHECK_STR(sign("GET", "/path", "limit=1", v1, 2, "x-sdk-date",
                 "20060102T150405Z", "", NULL),
            "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624");

  apig_header v2[] = {hdr("X-Sdk-Date", "20060102T150405Z"),
                      hdr("Content-Type", "application/json")};
  CHECK_STR(sign("POST", "/path", "key=value", v2, 2, "x-sdk-date",
                 "20060102T150405Z", "{\"Name\":\"test\",\"Id\":1}\n", NULL),
            "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59");

  apig_header v3[] = {hdr("Host", "service.endpoint.myhuaweicloud.com"),
                      hdr("X-Sdk-Date", "20200608T023900Z")};
  CHECK_STR(sign("GET", "/resources", "size=1", v3, 2, "host;x-sdk-date",
                 "20200608T023900Z", "", NULL),
            "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842");
  CHECK_STR(sign("POST", "/resources", "size=1", v3, 2, "host;x-sdk-date",
                 "20200608T023900Z", "{\"name\":\"test\",\"id\":1}", NULL),
            "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f");
}

/* Expected values below come from a separate implementation of the same
 * rules (Python hashlib and hmac) fed the canonical requests written out in
 * the comments. */
static void test_canonical_exact(void) {
  /* GET\n/v2/p/1/a%20b/~x/\na=~&a=%7F&ab=&b=2&c=\n
   * x-a:1\nx-a:2\nx-sdk-date:20200608T023900Z\n\n
   * x-a;x-sdk-date\ne3b0c442...b855 */
  apig_header a[] = {hdr("X-Sdk-Date", "20200608T023900Z"), hdr("X-A", "2"),
                     hdr("x-a", "  1 ")};
  CHECK_STR(sign("GET", "/v2/p%2F1/a b/~x/", "ab=&b=2&a=%7F&a=%7E&c", a, 3,
                 "x-a;x-sdk-date", "20200608T023900Z", "", NULL),
            "98997cc6e2009fe60af94e3ed7801e7265278a01a98033c9bf882946afb0c220");

  /* PUT\n/%C3%A9t%C3%A9/x%3Ay/\nk%20y=v%2Bw&z=%C3%A9\nhost:h:8080\n\n
   * host\nUNSIGNED-PAYLOAD */
  apig_header b[] = {hdr("Host", "h:8080")};
  CHECK_STR(sign("PUT", "/%c3%a9t%C3%A9/x:y", "z=%c3%a9&k y=v+w", b, 1,
                 "host", "20200608T023900Z", "ignored body",
                 "UNSIGNED-PAYLOAD"),
            "cebc5b219902f52c63aebc2d474be28d1cd7eb5135aa67b5aff7a82eaa08a945");
}

/* Each signed part of vector 3 changes the signature when altered. */
static void test_tampering(void) {
  const char *base =
      "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842";
  apig_header v3[] = {hdr("Host", "service.endpoint.myhuaweicloud.com"),
                      hdr("X-Sdk-Date", "20200608T023900Z")};
  apig_header other_host[] = {hdr("Host", "service.endpoint.example:8443"),
                              hdr("X-Sdk-Date", "20200608T023900Z")};
  apig_header other_date[] = {
      hdr("Host", "service.endpoint.myhuaweicloud.com"),
      hdr("X-Sdk-Date", "20200608T023901Z")};
  const char *d = "20200608T023900Z";
  const char *results[] = {
      sign("PUT", "/resources", "size=1", v3, 2, "host;x-sdk-date", d, "",
           NULL),
      sign("GET", "/resource", "size=1", v3, 2, "host;x-sdk-date", d, "",
           NULL),
      sign("GET", "/resources", "size=2", v3, 2, "host;x-sdk-date", d, "",
           NULL),
      sign("GET", "/resources", "", v3, 2, "host;x-sdk-date", d, "", NULL),
      sign("GET", "/resources", "size=1", other_host, 2, "host;x-sdk-date",
           d, "", NULL),
      sign("GET", "/resources", "size=1", other_date, 2, "host;x-sdk-date",
           d, "", NULL),
      sign("GET", "/resources", "size=1", v3, 2, "host;x-sdk-date",
           "20200608T023901Z", "", NULL),
      sign("GET", "/resources", "size=1", v3, 2, "x-sdk-date", d, "", NULL),
      sign("GET", "/resources", "size=1", v3, 2, "host;x-sdk-date", d, "x",
           NULL),
      sign("GET", "/resources", "size=1", v3, 2, "host;x-sdk-date", d, "",
           "UNSIGNED-PAYLOAD"),
  };
  for (size_t i = 0; i < sizeof results / sizeof *results; i++) {
    CHECK_INT(strlen(results[i]), 64);
    CHECK(strcmp(results[i], base) != 0);
  }
  char out[65];
  CHECK_INT(apig_sign("SecretKey2", "GET", "/resources", 10, "size=1", 6, v3,
                      2, "host;x-sdk-date", d, "", 0, NULL, out),
            0);
  CHECK(strcmp(out, base) != 0);
}

/* Two requests that must sign alike (same canonical request). */
static int same_signature(const char *path_a, const char *query_a,
                          const apig_header *headers_a, size_t count_a,
                          const char *path_b, const char *query_b,
                          const apig_header *headers_b, size_t count_b,
                          const char *signed_headers) {
  char a[65], b[65];
  const char *d = "20200608T023900Z";
  if (apig_sign("SecretKey", "GET", path_a, strlen(path_a), query_a,
                strlen(query_a), headers_a, count_a, signed_headers, d, "",
                0, NULL, a) != 0 ||
      apig_sign("SecretKey", "GET", path_b, strlen(path_b), query_b,
                strlen(query_b), headers_b, count_b, signed_headers, d, "",
                0, NULL, b) != 0)
    return -1;
  return strcmp(a, b) == 0;
}

static void test_canonical_forms(void) {
  apig_header h[] = {hdr("X-Sdk-Date", "20200608T023900Z")};
  const char *sd = "x-sdk-date";
  /* URI: decoded whole, split on '/', re-encoded, '/' appended. */
  CHECK_INT(same_signature("/path", "", h, 1, "/path/", "", h, 1, sd), 1);
  CHECK_INT(same_signature("/a%2Fb", "", h, 1, "/a/b", "", h, 1, sd), 1);
  CHECK_INT(same_signature("/%61%62c", "", h, 1, "/abc", "", h, 1, sd), 1);
  CHECK_INT(same_signature("/a b", "", h, 1, "/a%20b", "", h, 1, sd), 1);
  CHECK_INT(same_signature("/a%7e", "", h, 1, "/a~", "", h, 1, sd), 1);
  CHECK_INT(same_signature("/a%3a", "", h, 1, "/a:", "", h, 1, sd), 1);
  CHECK_INT(same_signature("", "", h, 1, "/", "", h, 1, sd), 1);
  CHECK_INT(same_signature("/a", "", h, 1, "/b", "", h, 1, sd), 0);
  /* Query: decoded, sorted by key then value, re-encoded. */
  CHECK_INT(same_signature("/p", "b=2&a=1", h, 1, "/p", "a=1&b=2", h, 1, sd),
            1);
  CHECK_INT(same_signature("/p", "a=2&a=1", h, 1, "/p", "a=1&a=2", h, 1, sd),
            1);
  CHECK_INT(same_signature("/p", "a=%41", h, 1, "/p", "a=A", h, 1, sd), 1);
  CHECK_INT(same_signature("/p", "k", h, 1, "/p", "k=", h, 1, sd), 1);
  CHECK_INT(same_signature("/p", "a=1&&b=2&", h, 1, "/p", "a=1&b=2", h, 1,
                           sd),
            1);
  CHECK_INT(same_signature("/p", "a=x=y", h, 1, "/p", "a=x%3Dy", h, 1, sd),
            1);
  CHECK_INT(same_signature("/p", "a=b+c", h, 1, "/p", "a=b%2Bc", h, 1, sd),
            1);
  CHECK_INT(same_signature("/p", "a=b+c", h, 1, "/p", "a=b%20c", h, 1, sd),
            0);
  CHECK_INT(same_signature("/p", "a=1", h, 1, "/p", "a=2", h, 1, sd), 0);
  /* Headers: values trimmed, repeated values sorted, names matched
   * case-insensitively. */
  apig_header two[] = {h[0], hdr("X-A", "2"), hdr("x-a", "1")};
  apig_header two_sorted[] = {h[0], hdr("x-a", "1"), hdr("X-A", "2")};
  apig_header one[] = {h[0], hdr("X-A", "1")};
  apig_header padded[] = {hdr("x-sdk-date", " 20200608T023900Z\t")};
  CHECK_INT(same_signature("/p", "", two, 3, "/p", "", two_sorted, 3,
                           "x-a;x-sdk-date"),
            1);
  CHECK_INT(same_signature("/p", "", two, 3, "/p", "", one, 2,
                           "x-a;x-sdk-date"),
            0);
  CHECK_INT(same_signature("/p", "", padded, 1, "/p", "", h, 1, sd), 1);
  /* Malformed escapes cannot be signed. */
  CHECK_INT(same_signature("/a%zz", "", h, 1, "/a", "", h, 1, sd), -1);
  CHECK_INT(same_signature("/a", "x=%4", h, 1, "/a", "", h, 1, sd), -1);
}

/* ---- credentials files ---- */

static char dir[] = "/tmp/test_auth_XXXXXX";
static char last_log[1024];
static int log_count;

static void test_log(void *ud, const apig_log_event *event) {
  (void)ud;
  if (event->level == APIG_LOG_WARN) {
    log_count++;
    snprintf(last_log, sizeof last_log, "%s", event->message);
  }
}

static const apig_logger logger = {test_log, NULL, APIG_LOG_DEBUG, NULL};

static const char *path_of(const char *name) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static const char *write_file(const char *name, const char *text,
                              mode_t mode) {
  const char *path = path_of(name);
  FILE *f = fopen(path, "w");
  if (!f)
    return path;
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
  return path;
}

/* Loads text from a 0600 file and returns the error ("" when it loaded). */
static char load_error[1024];

static const char *load_text(const char *text) {
  const char *path = write_file("creds.json", text, 0600);
  char *err = NULL;
  apig_credentials *c = apig_credentials_load(path, &logger, &err);
  snprintf(load_error, sizeof load_error, "%s", err ? err : "");
  CHECK((c == NULL) == (err != NULL));
  apig_credentials_free(c);
  apig_free(err);
  return load_error;
}

static void test_credentials_errors(void) {
  char *err = NULL;
  char missing[300];
  snprintf(missing, sizeof missing, "%s/absent.json", dir);
  CHECK(apig_credentials_load(missing, &logger, &err) == NULL);
  CHECK(err != NULL);
  if (err)
    CHECK(strstr(err, "absent.json"));
  apig_free(err);

  CHECK(strstr(load_text("{\"tokens\": ["), "invalid JSON"));
  CHECK(strstr(load_text("{} {}"), "unexpected data after"));
  CHECK(strstr(load_text("{}x"), "unexpected data after"));
  CHECK_STR(load_text(" {}\n"), "");
  const char *nul_token =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"t\\u0000x\","
      "\"project_id\":\"p\",\"permissions\":[]}]}";
  CHECK(strstr(load_text(nul_token), "\\u0000 at byte 34"));
  const char *backslash_token =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"t\\\\u0000x\","
      "\"project_id\":\"p\",\"permissions\":[]}]}";
  CHECK_STR(load_text(backslash_token), "");
  CHECK(strstr(load_text("[]"), "JSON object"));
  CHECK(strstr(load_text("{\"tokens\": {}}"), "\"tokens\" must be an array"));
  CHECK(strstr(load_text("{\"users\": []}"), "unknown field \"users\""));
  CHECK(strstr(load_text("{\"tokens\": [1]}"), "tokens[0] must be an object"));

  const char *no_project =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"t-a\",\"project_id\":\"p\","
      "\"permissions\":[]}, {\"name\":\"b\",\"token\":\"s3cret-b\","
      "\"permissions\":[\"read\"]}]}";
  const char *e = load_text(no_project);
  CHECK(strstr(e, "tokens[1]"));
  CHECK(strstr(e, "\"project_id\" is missing"));
  CHECK(!strstr(e, "s3cret-b"));

  const char *no_sk =
      "{\"access_keys\": [{\"name\":\"k\",\"ak\":\"AK1\",\"project_id\":\"p\","
      "\"permissions\":[\"read\"]}]}";
  e = load_text(no_sk);
  CHECK(strstr(e, "access_keys[0]"));
  CHECK(strstr(e, "\"sk\" is missing"));

  const char *empty_token =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"\",\"project_id\":\"p\","
      "\"permissions\":[]}]}";
  CHECK(strstr(load_text(empty_token), "\"token\" must be a non-empty"));

  const char *bad_permission =
      "{\"access_keys\": [{\"name\":\"k\",\"ak\":\"AK1\",\"sk\":\"s3cret-sk\","
      "\"project_id\":\"p\",\"permissions\":[\"read\",\"write\"]}]}";
  e = load_text(bad_permission);
  CHECK(strstr(e, "access_keys[0]"));
  CHECK(strstr(e, "unknown permission \"write\""));
  CHECK(!strstr(e, "s3cret-sk"));

  const char *permission_type =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"t\",\"project_id\":\"p\","
      "\"permissions\":\"read\"}]}";
  CHECK(strstr(load_text(permission_type), "\"permissions\" must be"));

  const char *typo =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"t\",\"project\":\"p\","
      "\"permissions\":[]}]}";
  CHECK(strstr(load_text(typo), "unknown field \"project\""));

  const char *repeated_token =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"s3cret-t\",\"project_id\":"
      "\"p\",\"permissions\":[]},{\"name\":\"b\",\"token\":\"s3cret-t\","
      "\"project_id\":\"q\",\"permissions\":[]}]}";
  e = load_text(repeated_token);
  CHECK(strstr(e, "tokens[1]"));
  CHECK(strstr(e, "tokens[0]"));
  CHECK(!strstr(e, "s3cret-t"));

  CHECK_STR(load_text("{}"), "");
}

static void test_credentials_mode_warning(void) {
  const char *text =
      "{\"tokens\": [{\"name\":\"a\",\"token\":\"t\",\"project_id\":\"p\","
      "\"permissions\":[\"read\"]}]}";
  char *err = NULL;
  log_count = 0;
  const char *path = write_file("open.json", text, 0644);
  apig_credentials *c = apig_credentials_load(path, &logger, &err);
  CHECK(c != NULL);
  CHECK_INT(log_count, 1);
  CHECK(strstr(last_log, "open.json"));
  CHECK(strstr(last_log, "group or others"));
  apig_credentials_free(c);

  log_count = 0;
  path = write_file("closed.json", text, 0600);
  c = apig_credentials_load(path, &logger, &err);
  CHECK(c != NULL);
  CHECK_INT(log_count, 0);
  apig_credentials_free(c);
  apig_free(err);
}

/* ---- apig_authenticate ---- */

static const char *creds_json =
    "{\"tokens\": ["
    " {\"name\":\"alice\",\"token\":\"tok-all\",\"project_id\":\"pA\","
    "  \"permissions\":[\"read\",\"publish\",\"offline\",\"manage\"]},"
    " {\"name\":\"no-read\",\"token\":\"tok-no-read\",\"project_id\":\"pA\","
    "  \"permissions\":[\"publish\",\"offline\",\"manage\"]},"
    " {\"name\":\"no-publish\",\"token\":\"tok-no-publish\","
    "  \"project_id\":\"pA\",\"permissions\":[\"read\",\"offline\","
    "  \"manage\"]},"
    " {\"name\":\"no-offline\",\"token\":\"tok-no-offline\","
    "  \"project_id\":\"pA\",\"permissions\":[\"read\",\"publish\","
    "  \"manage\"]},"
    " {\"name\":\"no-manage\",\"token\":\"tok-no-manage\","
    "  \"project_id\":\"pA\",\"permissions\":[\"read\",\"publish\","
    "  \"offline\"]}],"
    "\"access_keys\": ["
    " {\"name\":\"sdk\",\"ak\":\"AccessKey\",\"sk\":\"SecretKey\","
    "  \"project_id\":\"pA\","
    "  \"permissions\":[\"read\",\"publish\",\"offline\",\"manage\"]},"
    " {\"name\":\"reader\",\"ak\":\"ReadKey\",\"sk\":\"ReadSecret\","
    "  \"project_id\":\"pA\",\"permissions\":[\"read\"]}]}";

static apig_credentials *creds;
static char caller[64];

static apig_error auth_full(const apig_credentials *c, const char *project,
                            unsigned permission, const char *method,
                            const char *query, const char *body,
                            const apig_header *headers, size_t count,
                            int64_t now_s) {
  const char *path = "/v2/pA/apigw/instances/i1/apis/publish";
  apig_auth_request r = {.method = method,
                         .raw_path = path,
                         .raw_path_len = strlen(path),
                         .raw_query = query,
                         .raw_query_len = strlen(query),
                         .headers = headers,
                         .header_count = count,
                         .body = body,
                         .body_len = strlen(body),
                         .project_id = project,
                         .permission = permission,
                         .now_ns = now_s * NS_PER_S};
  return apig_authenticate(c, &r, caller, sizeof caller);
}

static apig_error auth(const apig_credentials *c, const char *project,
                       unsigned permission, const apig_header *headers,
                       size_t count) {
  return auth_full(c, project, permission, "GET", "", "", headers, count,
                   DATE_2020);
}

static void test_duplicate_headers(void) {
  apig_header tokens[] = {hdr("X-Auth-Token", "tok-all"),
                          hdr("X-Other", "x"),
                          hdr("x-auth-token", "tok-all")};
  apig_header tokens_differ[] = {hdr("X-AUTH-TOKEN", "nope"),
                                 hdr("X-Auth-Token", "tok-all")};
  apig_header dates[] = {hdr("X-Auth-Token", "tok-all"),
                         hdr("X-Sdk-Date", "20200608T023900Z"),
                         hdr("x-sdk-date", "20200608T023900Z")};
  apig_header authorizations[] = {
      hdr("authorization", "SDK-HMAC-SHA256 Access=AccessKey, "
                           "SignedHeaders=x-sdk-date, Signature=00"),
      hdr("X-Sdk-Date", "20200608T023900Z"),
      hdr("Authorization", "SDK-HMAC-SHA256 Access=AccessKey, "
                           "SignedHeaders=x-sdk-date, Signature=00")};
  for (int dev = 0; dev < 2; dev++) {
    const apig_credentials *c = dev ? NULL : creds;
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, tokens, 3), APIG_E_TOKEN_INVALID);
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, tokens + 1, 2), APIG_E_OK);
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, tokens_differ, 2),
              APIG_E_TOKEN_INVALID);
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, dates, 3), APIG_E_TOKEN_INVALID);
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, authorizations, 3),
              APIG_E_TOKEN_INVALID);
    CHECK_STR(caller, "");
  }
}

static void test_tokens(void) {
  apig_header none[] = {hdr("Host", "localhost")};
  apig_header empty[] = {hdr("X-Auth-Token", "")};
  apig_header blank[] = {hdr("X-Auth-Token", "  ")};
  apig_header good[] = {hdr("x-auth-token", "tok-all")};
  apig_header upper[] = {hdr("X-AUTH-TOKEN", "tok-all")};
  apig_header unknown[] = {hdr("X-Auth-Token", "bad")};
  apig_header prefix[] = {hdr("X-Auth-Token", "tok-al")};

  CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, none, 1), APIG_E_TOKEN_MISSING);
  CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, none, 0), APIG_E_TOKEN_MISSING);
  CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, empty, 1), APIG_E_TOKEN_INVALID);
  CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, blank, 1), APIG_E_TOKEN_INVALID);
  CHECK_INT(auth(NULL, "pZ", APIG_PERM_MANAGE, unknown, 1), APIG_E_OK);
  CHECK_STR(caller, "developer");

  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, none, 1), APIG_E_TOKEN_MISSING);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, empty, 1),
            APIG_E_TOKEN_INVALID);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, unknown, 1),
            APIG_E_TOKEN_INVALID);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, prefix, 1),
            APIG_E_TOKEN_INVALID);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, good, 1), APIG_E_OK);
  CHECK_STR(caller, "alice");
  CHECK_INT(auth(creds, "pA", APIG_PERM_MANAGE, upper, 1), APIG_E_OK);
  CHECK_STR(caller, "alice");
  CHECK_INT(auth(creds, "pB", APIG_PERM_READ, good, 1),
            APIG_E_NO_PERMISSION);
  CHECK_STR(caller, "");
}

static void test_token_permissions(void) {
  static const struct {
    const char *token;
    unsigned missing;
  } cases[] = {{"tok-no-read", APIG_PERM_READ},
               {"tok-no-publish", APIG_PERM_PUBLISH},
               {"tok-no-offline", APIG_PERM_OFFLINE},
               {"tok-no-manage", APIG_PERM_MANAGE}};
  unsigned all[] = {APIG_PERM_READ, APIG_PERM_PUBLISH, APIG_PERM_OFFLINE,
                    APIG_PERM_MANAGE};
  for (size_t i = 0; i < 4; i++) {
    apig_header h[] = {hdr("X-Auth-Token", cases[i].token)};
    for (size_t p = 0; p < 4; p++) {
      apig_error expected =
          all[p] == cases[i].missing ? APIG_E_NO_PERMISSION : APIG_E_OK;
      CHECK_INT(auth(creds, "pA", all[p], h, 1), expected);
    }
  }
}

static void test_project_header(void) {
  apig_header match[] = {hdr("X-Auth-Token", "tok-all"),
                         hdr("X-Project-Id", "pA")};
  apig_header mismatch[] = {hdr("X-Auth-Token", "tok-all"),
                            hdr("x-project-id", "pB")};
  apig_header second_mismatch[] = {hdr("X-Auth-Token", "tok-all"),
                                   hdr("X-Project-Id", "pA"),
                                   hdr("X-Project-Id", "pB")};
  for (int dev = 0; dev < 2; dev++) {
    const apig_credentials *c = dev ? NULL : creds;
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, match, 2), APIG_E_OK);
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, mismatch, 2),
              APIG_E_NO_PERMISSION);
    CHECK_INT(auth(c, "pA", APIG_PERM_READ, second_mismatch, 3),
              APIG_E_NO_PERMISSION);
  }
}

/* Builds the headers of a request signed with `sk` at `date`:
 * Host, X-Sdk-Date, X-Project-Id and Authorization, in that order. */
typedef struct signed_request {
  apig_header headers[6];
  size_t count;
  char authorization[256];
} signed_request;

static void make_signed(signed_request *s, const char *ak, const char *sk,
                        const char *method, const char *query,
                        const char *body, const char *date,
                        const char *project_header,
                        const char *signed_headers) {
  const char *path = "/v2/pA/apigw/instances/i1/apis/publish";
  s->count = 0;
  s->headers[s->count++] = hdr("Host", "127.0.0.1:8080");
  s->headers[s->count++] = hdr("X-Sdk-Date", date);
  if (project_header)
    s->headers[s->count++] = hdr("X-Project-Id", project_header);
  char signature[65] = "";
  CHECK_INT(apig_sign(sk, method, path, strlen(path), query, strlen(query),
                      s->headers, s->count, signed_headers, date, body,
                      strlen(body), NULL, signature),
            0);
  snprintf(s->authorization, sizeof s->authorization,
           "SDK-HMAC-SHA256 Access=%s, SignedHeaders=%s, Signature=%s", ak,
           signed_headers, signature);
  s->headers[s->count++] = hdr("Authorization", s->authorization);
}

static void test_signature_vector(void) {
  /* Vector 3 verified with its published signature, not with apig_sign. */
  const char *path = "/resources";
  apig_header h[] = {
      hdr("Host", "service.endpoint.myhuaweicloud.com"),
      hdr("X-Sdk-Date", "20200608T023900Z"),
      hdr("Authorization",
          "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, "
          "Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f1"
          "28e12cd842")};
  apig_auth_request r = {.method = "GET",
                         .raw_path = path,
                         .raw_path_len = strlen(path),
                         .raw_query = "size=1",
                         .raw_query_len = 6,
                         .headers = h,
                         .header_count = 3,
                         .body = "",
                         .body_len = 0,
                         .project_id = "pA",
                         .permission = APIG_PERM_READ,
                         .now_ns = DATE_2020 * NS_PER_S};
  CHECK_INT(apig_authenticate(creds, &r, caller, sizeof caller), APIG_E_OK);
  CHECK_STR(caller, "AccessKey");
  r.raw_query = "size=2";
  CHECK_INT(apig_authenticate(creds, &r, caller, sizeof caller),
            APIG_E_SIGNATURE_INVALID);
}

static void test_signatures(void) {
  const char *d = "20200608T023900Z";
  const char *sh = "host;x-project-id;x-sdk-date";
  signed_request s;
  make_signed(&s, "AccessKey", "SecretKey", "POST", "action=online",
              "{\"apis\":[]}\n", d, "pA", sh);
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "POST",
                      "action=online", "{\"apis\":[]}\n", s.headers, s.count,
                      DATE_2020),
            APIG_E_OK);
  CHECK_STR(caller, "AccessKey");
  /* Body, query and method are covered by the signature. */
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "POST",
                      "action=online", "{\"apis\":[1]}\n", s.headers,
                      s.count, DATE_2020),
            APIG_E_SIGNATURE_INVALID);
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "POST",
                      "action=offline", "{\"apis\":[]}\n", s.headers,
                      s.count, DATE_2020),
            APIG_E_SIGNATURE_INVALID);
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "PUT", "action=online",
                      "{\"apis\":[]}\n", s.headers, s.count, DATE_2020),
            APIG_E_SIGNATURE_INVALID);
  CHECK_STR(caller, "");
  /* The same signature is not valid for another key. */
  make_signed(&s, "AccessKey", "WrongSecret", "GET", "", "", d, NULL,
              "host;x-sdk-date");
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SIGNATURE_INVALID);
  /* A signature one character off, or of the wrong length. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "", d, NULL,
              "host;x-sdk-date");
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_OK);
  char *last = s.authorization + strlen(s.authorization) - 1;
  *last = *last == '0' ? '1' : '0';
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SIGNATURE_INVALID);
  *last = '\0';
  s.headers[s.count - 1] = hdr("Authorization", s.authorization);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SIGNATURE_INVALID);
}

static void test_signature_dates(void) {
  signed_request s;
  const char *sh = "host;x-sdk-date";
  /* 16 minutes ahead of and behind the server clock. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200608T025500Z", NULL, sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SDK_DATE_EXPIRED);
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200608T022300Z", NULL, sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SDK_DATE_EXPIRED);
  /* 15 minutes either way is still accepted. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200608T025400Z", NULL, sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_OK);
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200608T022400Z", NULL, sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_OK);
  /* Across a month end, with the clock on the other side. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200229T235900Z", NULL, sh);
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_READ, "GET", "", "", s.headers,
                      s.count, INT64_C(1583020740) + 300),
            APIG_E_OK);

  static const char *const malformed[] = {
      "2020-06-08T02:39:00Z", "20200608T023900",  "20200608 023900Z",
      "20201308T023900Z",     "20200631T023900Z", "20200608T243900Z",
      "20200608T026000Z",     "2020060aT023900Z", "20190229T023900Z",
      ""};
  for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
    make_signed(&s, "AccessKey", "SecretKey", "GET", "", "", malformed[i],
                NULL, sh);
    CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
              APIG_E_SIGNATURE_INVALID);
  }
  /* No X-Sdk-Date at all. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200608T023900Z", NULL, sh);
  s.headers[1] = hdr("X-Other", "1");
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SIGNATURE_INVALID);
  /* A correct signature that does not cover the date. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "",
              "20200608T023900Z", NULL, "host");
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_SIGNATURE_INVALID);
}

static void test_authorization_format(void) {
  static const char *const bad[] = {
      "Bearer abc",
      "SDK-HMAC-SHA256",
      "SDK-HMAC-SHA256 ",
      "SDK-HMAC-SM3 Access=AccessKey, SignedHeaders=x-sdk-date, "
      "Signature=00",
      "SDK-HMAC-SHA256 SignedHeaders=x-sdk-date, Signature=00",
      "SDK-HMAC-SHA256 Access=AccessKey, Signature=00",
      "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date",
      "SDK-HMAC-SHA256 Access=, SignedHeaders=x-sdk-date, Signature=00",
      "SDK-HMAC-SHA256 Access=AccessKey, Access=AccessKey, "
      "SignedHeaders=x-sdk-date, Signature=00",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    apig_header h[] = {hdr("Authorization", bad[i]),
                       hdr("X-Sdk-Date", "20200608T023900Z")};
    CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, h, 2),
              APIG_E_SIGNATURE_INVALID);
    CHECK_INT(auth(creds, "pA", APIG_PERM_READ, h, 2),
              APIG_E_SIGNATURE_INVALID);
  }
  /* Development mode takes a well-formed header unchecked. Spaces around
   * the parts are trimmed. */
  apig_header dev[] = {
      hdr("Authorization", "SDK-HMAC-SHA256 Access=AnyKey ,"
                           "SignedHeaders=x-sdk-date,  Signature=00 "),
      hdr("X-Auth-Token", "ignored")};
  CHECK_INT(auth(NULL, "pZ", APIG_PERM_MANAGE, dev, 2), APIG_E_OK);
  CHECK_STR(caller, "AnyKey");
  /* An Authorization header wins over a token, so an unknown AK fails
   * even next to a good token. */
  apig_header unknown[] = {
      hdr("Authorization", "SDK-HMAC-SHA256 Access=NoSuchKey, "
                           "SignedHeaders=x-sdk-date, Signature=00"),
      hdr("X-Auth-Token", "tok-all"),
      hdr("X-Sdk-Date", "20200608T023900Z")};
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, unknown, 3),
            APIG_E_AK_UNKNOWN);
}

static void test_signature_access(void) {
  const char *d = "20200608T023900Z";
  const char *sh = "host;x-project-id;x-sdk-date";
  signed_request s;
  /* AK of project pA on a path of project pB. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "", d, NULL,
              "host;x-sdk-date");
  CHECK_INT(auth(creds, "pB", APIG_PERM_READ, s.headers, s.count),
            APIG_E_NO_PERMISSION);
  /* A signed X-Project-Id naming another project. */
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "", d, "pB", sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_NO_PERMISSION);
  CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_NO_PERMISSION);
  make_signed(&s, "AccessKey", "SecretKey", "GET", "", "", d, "pA", sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_OK);
  CHECK_INT(auth(NULL, "pA", APIG_PERM_READ, s.headers, s.count), APIG_E_OK);
  /* A read-only key. */
  make_signed(&s, "ReadKey", "ReadSecret", "GET", "", "", d, "pA", sh);
  CHECK_INT(auth(creds, "pA", APIG_PERM_READ, s.headers, s.count),
            APIG_E_OK);
  CHECK_STR(caller, "ReadKey");
  CHECK_INT(auth(creds, "pA", APIG_PERM_PUBLISH, s.headers, s.count),
            APIG_E_NO_PERMISSION);
  CHECK_INT(auth(creds, "pA", APIG_PERM_OFFLINE, s.headers, s.count),
            APIG_E_NO_PERMISSION);
  CHECK_INT(auth(creds, "pA", APIG_PERM_MANAGE, s.headers, s.count),
            APIG_E_NO_PERMISSION);
}

static void test_content_sha256(void) {
  const char *path = "/v2/pA/apigw/instances/i1/apis/publish";
  const char *d = "20200608T023900Z";
  apig_header h[4] = {hdr("X-Sdk-Date", d),
                      hdr("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD")};
  char signature[65], authorization[256];
  CHECK_INT(apig_sign("SecretKey", "POST", path, strlen(path), "", 0, h, 2,
                      "x-sdk-date", d, "", 0, "UNSIGNED-PAYLOAD", signature),
            0);
  snprintf(authorization, sizeof authorization,
           "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "
           "Signature=%s",
           signature);
  h[2] = hdr("Authorization", authorization);
  /* Any body passes because the client declared it unsigned. */
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "POST", "",
                      "any body", h, 3, DATE_2020),
            APIG_E_OK);
  h[3] = hdr("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD");
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "POST", "",
                      "any body", h, 4, DATE_2020),
            APIG_E_SIGNATURE_INVALID);
  h[1] = hdr("X-Other", "1");
  CHECK_INT(auth_full(creds, "pA", APIG_PERM_PUBLISH, "POST", "", "", h, 3,
                      DATE_2020),
            APIG_E_SIGNATURE_INVALID);
}

/* An allocator that fails once `remaining` allocations have succeeded and
 * counts the blocks still live. */
typedef struct fault_state {
  long remaining;
  long live;
} fault_state;

static void *fault_realloc(void *ud, void *ptr, size_t size) {
  fault_state *state = ud;
  if (size == 0) {
    if (ptr)
      state->live--;
    free(ptr);
    return NULL;
  }
  if (state->remaining == 0)
    return NULL;
  state->remaining--;
  void *p = realloc(ptr, size);
  if (p && !ptr)
    state->live++;
  return p;
}

/* Makes each allocation of loading and of a signed request fail in turn:
 * no leak, no crash, and a failure never passes for a bad signature. */
static void test_allocation_failures(const char *path) {
  cJSON_Hooks hooks = {apig_malloc, apig_free};
  cJSON_InitHooks(&hooks);
  signed_request s;
  make_signed(&s, "AccessKey", "SecretKey", "POST", "b=2&a=1", "{}",
              "20200608T023900Z", "pA", "host;x-project-id;x-sdk-date");
  int done = 0;
  for (long n = 0; n < 10000 && !done; n++) {
    fault_state state = {n, 0};
    apig_allocator allocator = {fault_realloc, &state};
    const apig_allocator *previous = apig_alloc_enter(&allocator);
    char *err = NULL;
    apig_credentials *c = apig_credentials_load(path, &logger, &err);
    apig_error result = APIG_E_SYSTEM;
    if (c)
      result = auth_full(c, "pA", APIG_PERM_PUBLISH, "POST", "b=2&a=1", "{}",
                         s.headers, s.count, DATE_2020);
    CHECK(result == APIG_E_OK || result == APIG_E_SYSTEM);
    done = result == APIG_E_OK;
    apig_credentials_free(c);
    apig_free(err);
    apig_alloc_leave(previous);
    CHECK_INT(state.live, 0);
  }
  CHECK(done);
  cJSON_InitHooks(NULL);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_vectors();
  test_canonical_exact();
  test_tampering();
  test_canonical_forms();
  test_credentials_errors();
  test_credentials_mode_warning();

  char *err = NULL;
  creds = apig_credentials_load(write_file("creds.json", creds_json, 0600),
                                &logger, &err);
  CHECK(creds != NULL);
  if (err)
    fprintf(stderr, "credentials: %s\n", err);
  apig_free(err);
  if (creds) {
    test_duplicate_headers();
    test_tokens();
    test_token_permissions();
    test_project_header();
    test_signature_vector();
    test_signatures();
    test_signature_dates();
    test_authorization_format();
    test_signature_access();
    test_content_sha256();
    test_allocation_failures(path_of("creds.json"));
  }
  apig_credentials_free(creds);

  const char *names[] = {"creds.json", "open.json", "closed.json"};
  for (size_t i = 0; i < 3; i++) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
  return test_report("test_auth");
}
