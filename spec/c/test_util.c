/* Times, ids, UTF-8 counting and percent-decoding in util.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"
#include "util.h"

/* The reference: the C library's own calendar. */
static void reference(int64_t seconds, const char *fmt, char *out,
                      size_t size) {
  time_t t = (time_t)seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, size, fmt, &tm);
}

static void check_calendar(void) {
  /* Day, month, year and leap-year edges, then a spread of instants. */
  const int64_t fixed[] = {0,          -1,         86399,      86400,
                           951782399,  951782400,  951868800,  1709251199,
                           1709251200, 4102444799, 4102444800, 9214646399};
  char got[APIG_TIME_LEN], want[64];
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    apig_time_seconds(fixed[i] * 1000000000, got);
    reference(fixed[i], "%Y-%m-%dT%H:%M:%SZ", want, sizeof want);
    CHECK_STR(got, want);
  }
  srand(7);
  for (int i = 0; i < 20000; i++) {
    int64_t seconds = ((int64_t)rand() << 16 ^ rand()) % 4102444800;
    apig_time_seconds(seconds * 1000000000 + 123, got);
    reference(seconds, "%Y-%m-%dT%H:%M:%SZ", want, sizeof want);
    if (strcmp(got, want) != 0) {
      CHECK_STR(got, want);
      break;
    }
    apig_version_no(seconds * 1000000000, got);
    reference(seconds + 8 * 3600, "%Y%m%d%H%M%S", want, sizeof want);
    if (strcmp(got, want) != 0) {
      CHECK_STR(got, want);
      break;
    }
  }
  CHECK(1);
}

static void check_fractions(void) {
  char out[APIG_TIME_LEN];
  int64_t base = (int64_t)1596423691 * 1000000000;
  apig_time_nano(base + 265228210, out);
  CHECK_STR(out, "2020-08-03T03:01:31.26522821Z");
  apig_time_nano(base, out);
  CHECK_STR(out, "2020-08-03T03:01:31Z");
  apig_time_nano(base + 1, out);
  CHECK_STR(out, "2020-08-03T03:01:31.000000001Z");
  apig_time_nano(base + 500000000, out);
  CHECK_STR(out, "2020-08-03T03:01:31.5Z");
  apig_time_seconds(base + 999999999, out);
  CHECK_STR(out, "2020-08-03T03:01:31Z");
  apig_version_no((int64_t)1596418560 * 1000000000, out);
  CHECK_STR(out, "20200803093600");
}

static void check_ids(void) {
  char a[APIG_ID_LEN + 1], b[APIG_ID_LEN + 1];
  CHECK_INT(apig_new_id(a), 0);
  CHECK_INT(apig_new_id(b), 0);
  CHECK_INT(strlen(a), 32);
  CHECK(strcmp(a, b) != 0);
  CHECK(a[12] == '4');
  CHECK(strchr("89ab", a[16]) != NULL);
  CHECK_INT(strspn(a, "0123456789abcdef"), 32);
}

static void check_utf8(void) {
  CHECK_INT(apig_utf8_count("abc", 3), 3);
  CHECK_INT(apig_utf8_count("\xe5\x8f\x91", 3), 1);
  CHECK_INT(apig_utf8_count("\xf0\x9f\x98\x80", 4), 1);
  CHECK_INT(apig_utf8_count("\xc3\x28", 2), -1);
  CHECK_INT(apig_utf8_count("\xed\xa0\x80", 3), -1);
  CHECK_INT(apig_utf8_count("\xc0\x80", 2), -1);
  CHECK_INT(apig_utf8_count("\xf5\x80\x80\x80", 4), -1);
  CHECK_INT(apig_utf8_count("\xff", 1), -1);
  CHECK_INT(apig_utf8_count("a\0b", 3), -1);
  CHECK_INT(apig_utf8_count("\xe5\x8f", 2), -1);
}

static void check_percent(void) {
  char out[32];
  CHECK_INT(apig_percent_decode("onl%69ne", 8, out), 6);
  CHECK_STR(out, "online");
  CHECK_INT(apig_percent_decode("i%2F1", 5, out), 3);
  CHECK_STR(out, "i/1");
  CHECK_INT(apig_percent_decode("a+b", 3, out), 3);
  CHECK_STR(out, "a+b");
  CHECK_INT(apig_percent_decode("%4", 2, out), -1);
  CHECK_INT(apig_percent_decode("%zz", 3, out), -1);
  CHECK_INT(apig_percent_decode("x%", 2, out), -1);
}

int main(void) {
  check_calendar();
  check_fractions();
  check_ids();
  check_utf8();
  check_percent();
  return test_report("test_util");
}
