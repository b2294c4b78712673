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

static int64_t floor_seconds(int64_t ns) {
  return ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
}

/* Writes the civil UTC date and time of Unix `seconds` as fourteen digits
 * YYYYMMDDhhmmss into digits. Days to date follows the proleptic Gregorian
 * calendar in 400-year eras, so it needs no table and no locale. */
static void civil_digits(int64_t seconds, char digits[14]) {
  int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  int64_t rest = seconds - days * 86400;
  days += 719468; /* days from 0000-03-01 to 1970-01-01 */
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2);
  int64_t fields[6] = {year, month, day, rest / 3600, rest / 60 % 60,
                       rest % 60};
  static const int widths[6] = {4, 2, 2, 2, 2, 2};
  int at = 0;
  for (int f = 0; f < 6; f++) {
    int64_t value = fields[f] < 0 ? 0 : fields[f];
    for (int k = widths[f] - 1; k >= 0; k--) {
      digits[at + k] = (char)('0' + value % 10);
      value /= 10;
    }
    at += widths[f];
  }
}

/* Writes "YYYY-MM-DDThh:mm:ss" (19 characters, no NUL). */
static void format_utc(int64_t seconds, char *out) {
  char d[14];
  civil_digits(seconds, d);
  memcpy(out, d, 4);
  out[4] = '-';
  memcpy(out + 5, d + 4, 2);
  out[7] = '-';
  memcpy(out + 8, d + 6, 2);
  out[10] = 'T';
  memcpy(out + 11, d + 8, 2);
  out[13] = ':';
  memcpy(out + 14, d + 10, 2);
  out[16] = ':';
  memcpy(out + 17, d + 12, 2);
}

void apig_time_seconds(int64_t ns, char out[APIG_TIME_LEN]) {
  format_utc(floor_seconds(ns), out);
  out[19] = 'Z';
  out[20] = '\0';
}

void apig_time_nano(int64_t ns, char out[APIG_TIME_LEN]) {
  int64_t seconds = floor_seconds(ns);
  long fraction = (long)(ns - seconds * 1000000000);
  format_utc(seconds, out);
  size_t n = 19;
  if (fraction != 0) {
    out[n++] = '.';
    for (long scale = 100000000; scale > 0 && fraction > 0; scale /= 10) {
      out[n++] = (char)('0' + fraction / scale);
      fraction %= scale;
    }
  }
  out[n++] = 'Z';
  out[n] = '\0';
}

void apig_version_no(int64_t ns, char out[APIG_TIME_LEN]) {
  civil_digits(floor_seconds(ns) + 8 * 3600, out);
  out[14] = '\0';
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
