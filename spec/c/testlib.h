/* Minimal assertions for the C tests: each prints both values on failure
 * and counts it; test_report() prints the totals and returns the exit code.
 */
#ifndef APIG_TESTLIB_H
#define APIG_TESTLIB_H

#include <stdio.h>
#include <string.h>

static int test_checks;
static int test_failures;

#define CHECK(cond)                                                           \
  do {                                                                        \
    test_checks++;                                                            \
    if (!(cond)) {                                                            \
      test_failures++;                                                        \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,       \
              #cond);                                                         \
    }                                                                         \
  } while (0)

#define CHECK_INT(actual, expected)                                           \
  do {                                                                        \
    long long a_ = (long long)(actual), e_ = (long long)(expected);           \
    test_checks++;                                                            \
    if (a_ != e_) {                                                           \
      test_failures++;                                                        \
      fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__,         \
              __LINE__, #actual, a_, e_);                                     \
    }                                                                         \
  } while (0)

#define CHECK_STR(actual, expected)                                           \
  do {                                                                        \
    const char *a_ = (actual), *e_ = (expected);                              \
    test_checks++;                                                            \
    if (!a_ || strcmp(a_, e_) != 0) {                                         \
      test_failures++;                                                        \
      fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,     \
              __LINE__, #actual, a_ ? a_ : "(null)", e_);                     \
    }                                                                         \
  } while (0)

static inline int test_report(const char *name) {
  printf("%s: %d checks, %d passed, %d failed\n", name, test_checks,
         test_checks - test_failures, test_failures);
  return test_failures ? 1 : 0;
}

#endif
