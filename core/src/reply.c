/* Replies, error bodies and the error table accessors. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"

static const struct {
  int status;
  const char *code;
  const char *template;
} error_table[] = {
#define APIG_ERROR_ROW(name, status, code, message) {status, code, message},
    APIG_ERROR_TABLE(APIG_ERROR_ROW)
#undef APIG_ERROR_ROW
};

static int valid_error(apig_error error) {
  return (int)error >= 0 && error < APIG_E__COUNT;
}

const char *apig_error_code(apig_error error) {
  return valid_error(error) ? error_table[error].code : "APIG.9999";
}

int apig_error_status(apig_error error) {
  return valid_error(error) ? error_table[error].status : 500;
}

const char *apig_error_template(apig_error error) {
  return valid_error(error) ? error_table[error].template : "System error";
}

/* Cuts the multi-byte UTF-8 sequence that a truncation left incomplete
 * at the end of out, so a shortened message stays valid UTF-8. */
static void cut_partial_utf8(char *out) {
  size_t len = strlen(out), start = len;
  while (start > 0 && len - start < 3 &&
         ((unsigned char)out[start - 1] & 0xC0) == 0x80)
    start--;
  if (start == 0)
    return;
  unsigned char lead = (unsigned char)out[start - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (need > len - start + 1)
    out[start - 1] = '\0';
}

void apig_error_vformat(char *out, size_t size, apig_error error,
                        va_list ap) {
  const char *template = apig_error_template(error);
  const char *args[2] = {"", ""};
  int wanted = 0;
  for (const char *p = template; (p = strstr(p, "%s")) != NULL; p += 2)
    wanted++;
  for (int i = 0; i < wanted && i < 2; i++) {
    const char *arg = va_arg(ap, const char *);
    args[i] = arg ? arg : "";
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  int len = snprintf(out, size, template, args[0], args[1]);
#pragma GCC diagnostic pop
  if (size > 0 && len >= 0 && (size_t)len >= size)
    cut_partial_utf8(out);
}

void apig_error_format(char *out, size_t size, apig_error error, ...) {
  va_list ap;
  va_start(ap, error);
  apig_error_vformat(out, size, error, ap);
  va_end(ap);
}

void apig_reply_init(apig_reply *reply) {
  memset(reply, 0, sizeof *reply);
  apig_buf_init(&reply->body);
}

void apig_reply_free(apig_reply *reply) { apig_buf_free(&reply->body); }

void apig_reply_error(apig_reply *reply, apig_error error, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, error);
  apig_error_vformat(message, sizeof message, error, ap);
  va_end(ap);
  reply->status = apig_error_status(error);
  reply->content_type = NULL;
  apig_buf_reset(&reply->body);
  apig_buf_puts(&reply->body, "{\"error_code\":\"");
  apig_buf_puts(&reply->body, apig_error_code(error));
  apig_buf_puts(&reply->body, "\",\"error_msg\":");
  apig_buf_json_cstr(&reply->body, message);
  /* Errors of the authentication layer carry the request id too. */
  if (reply->status == 401) {
    apig_buf_puts(&reply->body, ",\"request_id\":\"");
    apig_buf_puts(&reply->body, reply->request_id);
    apig_buf_putc(&reply->body, '"');
  }
  apig_buf_putc(&reply->body, '}');
}

size_t apig_reply_headers(const apig_reply *reply, apig_header out[4]) {
  size_t n = 0;
  out[n++] = (apig_header){"X-Request-Id", 12, reply->request_id,
                           strlen(reply->request_id)};
  if (reply->body.len > 0) {
    const char *type = reply->content_type
                           ? reply->content_type
                           : "application/json;charset=UTF-8";
    out[n++] = (apig_header){"Content-Type", 12, type, strlen(type)};
  }
  if (reply->allow[0])
    out[n++] = (apig_header){"Allow", 5, reply->allow, strlen(reply->allow)};
  return n;
}
