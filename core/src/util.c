/* Ids, times, UTF-8 and percent-encoding helpers. */
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Random bytes come from getrandom(2) in blocks, so a batch of 1000 new ids
 * costs a few system calls instead of 1000. The pool is per thread. */
static int random_bytes(unsigned char *out, size_t len) {
  static _Thread_local unsigned char pool[4096];
  static _Thread_local size_t pool_left;
  while (len > 0) {
    if (pool_left == 0) {
      size_t filled = 0;
      while (filled < sizeof pool) {
        ssize_t n = getrandom(pool + filled, sizeof pool - filled, 0);
        if (n < 0)
          return -1;
        filled += (size_t)n;
      }
      pool_left = sizeof pool;
    }
    size_t take = len < pool_left ? len : pool_left;
    memcpy(out, pool + sizeof pool - pool_left, take);
    memset(pool + sizeof pool - pool_left, 0, take);
    pool_left -= take;
    out += take;
    len -= take;
  }
  return 0;
}

static void hex_encode(const unsigned char *in, size_t len, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * len] = '\0';
}

int apig_new_id(char out[APIG_ID_LEN + 1]) {
  unsigned char raw[16];
  if (random_bytes(raw, sizeof raw) != 0)
    return -1;
  raw[6] = (unsigned char)((raw[6] & 0x0f) | 0x40); /* version 4 */
  raw[8] = (unsigned char)((raw[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  hex_encode(raw, sizeof raw, out);
  return 0;
}

int apig_new_request_id(char out[APIG_ID_LEN + 1]) {
  unsigned char raw[16];
  if (random_bytes(raw, sizeof raw) != 0)
    return -1;
  hex_encode(raw, sizeof raw, out);
  return 0;
}

int64_t apig_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void format_utc(int64_t seconds, const char *fmt, char *out,
                       size_t size) {
  time_t t = (time_t)seconds;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, size, fmt, &tm);
}

static int64_t floor_seconds(int64_t ns) {
  return ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
}

void apig_time_seconds(int64_t ns, char out[APIG_TIME_LEN]) {
  format_utc(floor_seconds(ns), "%Y-%m-%dT%H:%M:%SZ", out, APIG_TIME_LEN);
}

void apig_time_nano(int64_t ns, char out[APIG_TIME_LEN]) {
  int64_t seconds = floor_seconds(ns);
  long fraction = (long)(ns - seconds * 1000000000);
  format_utc(seconds, "%Y-%m-%dT%H:%M:%S", out, APIG_TIME_LEN);
  if (fraction == 0) {
    strcat(out, "Z");
    return;
  }
  char digits[16];
  snprintf(digits, sizeof digits, ".%09ld", fraction);
  size_t n = strlen(digits);
  while (digits[n - 1] == '0')
    digits[--n] = '\0';
  strcat(out, digits);
  strcat(out, "Z");
}

void apig_version_no(int64_t ns, char out[APIG_TIME_LEN]) {
  format_utc(floor_seconds(ns) + 8 * 3600, "%Y%m%d%H%M%S", out,
             APIG_TIME_LEN);
}

long apig_utf8_count(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  long count = 0;
  size_t i = 0;
  while (i < len) {
    unsigned char c = p[i];
    size_t need;
    unsigned int cp;
    if (c == 0)
      return -1;
    if (c < 0x80) {
      i++;
      count++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (len - i <= need)
      return -1;
    for (size_t k = 1; k <= need; k++) {
      unsigned char cc = p[i + k];
      if ((cc & 0xc0) != 0x80)
        return -1;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return -1;
    i += need + 1;
    count++;
  }
  return count;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

long apig_percent_decode(const char *src, size_t len, char *dst) {
  size_t out = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] != '%') {
      dst[out++] = src[i];
      continue;
    }
    if (i + 2 >= len)
      return -1;
    int hi = hex_value(src[i + 1]);
    int lo = hex_value(src[i + 2]);
    if (hi < 0 || lo < 0)
      return -1;
    dst[out++] = (char)(hi * 16 + lo);
    i += 2;
  }
  dst[out] = '\0';
  return (long)out;
}
