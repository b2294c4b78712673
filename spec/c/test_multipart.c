/* Tests of the multipart/form-data parser: Content-Type parameters,
 * delimiters with CRLF or LF, preambles, look-alike lines and damage. */
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "testlib.h"

static void test_header_param(void) {
  char out[80];
  const char *ct = "multipart/form-data; boundary=abc123";
  CHECK_INT(apig_header_param(ct, strlen(ct), "boundary", out, sizeof out),
            1);
  CHECK_STR(out, "abc123");
  ct = "multipart/form-data;BOUNDARY = \"a b;c\\\"d\" ; charset=utf-8";
  CHECK_INT(apig_header_param(ct, strlen(ct), "boundary", out, sizeof out),
            1);
  CHECK_STR(out, "a b;c\"d");
  CHECK_INT(apig_header_param(ct, strlen(ct), "charset", out, sizeof out),
            1);
  CHECK_STR(out, "utf-8");
  ct = "multipart/form-data";
  CHECK_INT(apig_header_param(ct, strlen(ct), "boundary", out, sizeof out),
            0);
  ct = "multipart/form-data; boundary=\"unterminated";
  CHECK_INT(apig_header_param(ct, strlen(ct), "boundary", out, sizeof out),
            -1);
  ct = "multipart/form-data; boundary=";
  CHECK_INT(apig_header_param(ct, strlen(ct), "boundary", out, sizeof out),
            -1);
  /* "filename" is not "name", and a ';' inside quotes splits nothing. */
  const char *cd = "form-data; filename=\"x;name=y\"; name=\"file_name\"";
  CHECK_INT(apig_header_param(cd, strlen(cd), "name", out, sizeof out), 1);
  CHECK_STR(out, "file_name");
  char small[4];
  cd = "form-data; name=\"toolong\"";
  CHECK_INT(apig_header_param(cd, strlen(cd), "name", small, sizeof small),
            -1);
}

static void test_is_multipart(void) {
  const char *yes[] = {"multipart/form-data; boundary=x",
                       "Multipart/Form-Data;boundary=x",
                       "  multipart/form-data", NULL};
  const char *no[] = {"application/json", "multipart/mixed; boundary=x",
                      "multipart/form-dataX", "", NULL};
  for (int i = 0; yes[i]; i++)
    CHECK(apig_is_multipart(yes[i], strlen(yes[i])));
  for (int i = 0; no[i]; i++)
    CHECK(!apig_is_multipart(no[i], strlen(no[i])));
}

/* Parses a heap copy of exactly len bytes, so AddressSanitizer reports
 * any read past the end. */
static long parse(const char *body, const char *boundary,
                  apig_form_part *parts, size_t max, char *err) {
  size_t len = strlen(body);
  static char *block;
  free(block);
  block = malloc(len ? len : 1);
  memcpy(block, body, len);
  long n = apig_multipart_parse(block, len, boundary, parts, max, err, 160);
  /* Part data points into block: compare before the next call. */
  return n;
}

static int part_is(const apig_form_part *part, const char *name,
                   const char *data) {
  return strcmp(part->name, name) == 0 && part->len == strlen(data) &&
         memcmp(part->data, data, part->len) == 0;
}

static void test_crlf_body(void) {
  apig_form_part parts[8];
  char err[160] = "";
  const char *body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"is_create_group\"\r\n"
      "\r\n"
      "true\r\n"
      "--XyZ\r\n"
      "content-disposition: form-data; name=\"file_name\"; "
      "filename=\"api.yaml\"\r\n"
      "Content-Type: application/octet-stream\r\n"
      "\r\n"
      "openapi: 3.0.0\r\n"
      "x: \"--XyZ is not a delimiter inside a line\"\r\n"
      "--XyZabc is a look-alike line\r\n"
      "\r\n"
      "--XyZ--\r\n"
      "epilogue\r\n";
  long n = parse(body, "XyZ", parts, 8, err);
  CHECK_INT(n, 2);
  CHECK(part_is(&parts[0], "is_create_group", "true"));
  CHECK(part_is(&parts[1], "file_name",
                "openapi: 3.0.0\r\n"
                "x: \"--XyZ is not a delimiter inside a line\"\r\n"
                "--XyZabc is a look-alike line\r\n"));
}

static void test_lf_body_and_preamble(void) {
  apig_form_part parts[8];
  char err[160] = "";
  const char *body = "This is a preamble.\n"
                     "--b  \n"
                     "Content-Disposition: form-data; name=file_name\n"
                     "\n"
                     "{\"a\":1}\n"
                     "--b\n"
                     "Content-Disposition: form-data; name=\"empty\"\n"
                     "\n"
                     "\n"
                     "--b--";
  long n = parse(body, "b", parts, 8, err);
  CHECK_INT(n, 2);
  CHECK(part_is(&parts[0], "file_name", "{\"a\":1}"));
  CHECK(part_is(&parts[1], "empty", ""));
  /* Content that ends where its headers end, without a line of its own. */
  body = "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n--b--\r\n";
  CHECK_INT(parse(body, "b", parts, 8, err), 1);
  CHECK(part_is(&parts[0], "x", ""));
}

static void test_damage(void) {
  apig_form_part parts[2];
  char err[160] = "";
  CHECK_INT(parse("no delimiter at all", "b", parts, 2, err), -1);
  CHECK_STR(err, "multipart body has no boundary line");
  CHECK_INT(parse("--b\r\nContent-Disposition: form-data; name=x\r\n\r\n"
                  "data without an end",
                  "b", parts, 2, err),
            -1);
  CHECK_STR(err, "multipart body has no closing boundary");
  CHECK_INT(parse("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "b",
                  parts, 2, err),
            -1);
  CHECK_STR(err, "multipart part has no Content-Disposition name");
  CHECK_INT(parse("--b\r\nContent-Disposition: form-data; name=x", "b",
                  parts, 2, err),
            -1);
  CHECK_STR(err, "multipart part headers do not end");

  const char *three = "--b\nContent-Disposition: form-data; name=a\n\n1\n"
                      "--b\nContent-Disposition: form-data; name=b\n\n2\n"
                      "--b\nContent-Disposition: form-data; name=c\n\n3\n"
                      "--b--\n";
  CHECK_INT(parse(three, "b", parts, 2, err), -1);
  CHECK_STR(err, "multipart body has more than 2 parts");
  CHECK_INT(parse("--\r\n", "", parts, 2, err), -1);
  char long_boundary[80];
  memset(long_boundary, 'a', 71);
  long_boundary[71] = '\0';
  CHECK_INT(parse("x", long_boundary, parts, 2, err), -1);
  CHECK_STR(err, "multipart boundary must be 1 to 70 characters");

  /* A body cut at every length never reads past its end. */
  const char *whole = "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n"
                      "\r\nabc\r\n--b--\r\n";
  for (size_t len = 0; len < strlen(whole); len++) {
    char *cut = malloc(len ? len : 1);
    memcpy(cut, whole, len);
    long n = apig_multipart_parse(cut, len, "b", parts, 2, err, sizeof err);
    CHECK(n == -1 || n == 1);
    free(cut);
  }
}

int main(void) {
  test_header_param();
  test_is_multipart();
  test_crlf_body();
  test_lf_body_and_preamble();
  test_damage();
  return test_report("test_multipart");
}
