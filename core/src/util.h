/* Ids, times, UTF-8 and percent-encoding helpers. */
#ifndef APIG_UTIL_H
#define APIG_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define APIG_ID_LEN 32

/* Writes 32 lowercase hex characters and a NUL: a random UUIDv4 without
 * dashes, from the kernel's cryptographic source. Returns 0 or -1. */
int apig_new_id(char out[APIG_ID_LEN + 1]);

/* Writes 32 random lowercase hex characters and a NUL (no UUID layout). */
int apig_new_request_id(char out[APIG_ID_LEN + 1]);

/* Nanoseconds since the Unix epoch, wall clock. */
int64_t apig_now_ns(void);

/* RFC 3339 UTC with "Z". apig_time_nano keeps the fraction to the
 * nanosecond with trailing zeros dropped; apig_time_seconds drops it. */
#define APIG_TIME_LEN 40
void apig_time_nano(int64_t ns, char out[APIG_TIME_LEN]);
void apig_time_seconds(int64_t ns, char out[APIG_TIME_LEN]);
/* The publish time in UTC+8 as YYYYMMDDhhmmss. */
void apig_version_no(int64_t ns, char out[APIG_TIME_LEN]);

/* Returns the number of code points of valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF, no NUL byte), or -1. */
long apig_utf8_count(const char *s, size_t len);

/* Percent-decodes src into dst (at least len + 1 bytes). Returns the decoded
 * length, or -1 for a malformed escape. Does not treat '+' as space. */
long apig_percent_decode(const char *src, size_t len, char *dst);

#endif
