/* Ops in a compact binary form, the payload of journal and snapshot records.
 *
 * One encoded op: u8 kind | u8 flags | ten string fields | times.
 * Each string field is a varint (0: absent, else length + 1), then its bytes
 * and a NUL, so decoded ops point into the payload without copying. Flags
 * bit 0 means time_ns follows, bit 1 time2_ns, each 8 bytes little-endian.
 * A payload is a run of encoded ops.
 */
#include <string.h>

#include "persist.h"

enum { TIME_FLAG = 1, TIME2_FLAG = 2 };

#define KIND_MAX APIG_OP_VERSION_DELETE

static void put_varint(apig_buf *out, uint64_t value) {
  unsigned char bytes[10];
  size_t n = 0;
  while (value >= 0x80) {
    bytes[n++] = (unsigned char)(value | 0x80);
    value >>= 7;
  }
  bytes[n++] = (unsigned char)value;
  apig_buf_append(out, bytes, n);
}

static void put_field(apig_buf *out, const char *value, size_t len) {
  if (!value) {
    put_varint(out, 0);
    return;
  }
  put_varint(out, (uint64_t)len + 1);
  apig_buf_append(out, value, len);
  apig_buf_putc(out, '\0');
}

static void put_cstr(apig_buf *out, const char *value) {
  put_field(out, value, value ? strlen(value) : 0);
}

static void put_time(apig_buf *out, int64_t ns) {
  unsigned char bytes[8];
  uint64_t v = (uint64_t)ns;
  for (int i = 0; i < 8; i++)
    bytes[i] = (unsigned char)(v >> (8 * i));
  apig_buf_append(out, bytes, sizeof bytes);
}

void apig_op_encode(apig_buf *out, const apig_op *op) {
  unsigned char head[2] = {(unsigned char)op->kind, 0};
  if (op->time_ns)
    head[1] |= TIME_FLAG;
  if (op->time2_ns)
    head[1] |= TIME2_FLAG;
  apig_buf_append(out, head, sizeof head);
  put_cstr(out, op->project_id);
  put_cstr(out, op->instance_id);
  put_cstr(out, op->id);
  put_cstr(out, op->env_id);
  put_cstr(out, op->group_id);
  put_cstr(out, op->name);
  put_cstr(out, op->remark);
  put_field(out, op->def, op->def_len);
  put_cstr(out, op->version_id);
  put_cstr(out, op->publish_id);
  if (op->time_ns)
    put_time(out, op->time_ns);
  if (op->time2_ns)
    put_time(out, op->time2_ns);
}

typedef struct reader {
  const unsigned char *data;
  size_t len, at;
  int failed;
} reader;

static uint64_t get_varint(reader *r) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->at >= r->len)
      break;
    unsigned char byte = r->data[r->at++];
    value |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80))
      return value;
  }
  r->failed = 1;
  return 0;
}

/* Returns the field's bytes (NUL-terminated inside the payload) or NULL. */
static const char *get_field(reader *r, size_t *len) {
  uint64_t n = get_varint(r);
  if (len)
    *len = 0;
  if (n == 0 || r->failed)
    return NULL;
  n--;
  if (n >= r->len - r->at || r->data[r->at + n] != '\0') {
    r->failed = 1;
    return NULL;
  }
  const char *value = (const char *)r->data + r->at;
  r->at += n + 1;
  if (len)
    *len = (size_t)n;
  return value;
}

static int64_t get_time(reader *r) {
  if (r->len - r->at < 8) {
    r->failed = 1;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)r->data[r->at + i] << (8 * i);
  r->at += 8;
  return (int64_t)v;
}

int apig_op_decode(const char *data, size_t len, size_t *offset,
                   apig_op *op) {
  reader r = {(const unsigned char *)data, len, *offset, 0};
  memset(op, 0, sizeof *op);
  if (len - r.at < 2 || r.data[r.at] > KIND_MAX)
    return -1;
  op->kind = (apig_op_kind)r.data[r.at];
  unsigned flags = r.data[r.at + 1];
  r.at += 2;
  op->project_id = get_field(&r, NULL);
  op->instance_id = get_field(&r, NULL);
  op->id = get_field(&r, NULL);
  op->env_id = get_field(&r, NULL);
  op->group_id = get_field(&r, NULL);
  op->name = get_field(&r, NULL);
  op->remark = get_field(&r, NULL);
  op->def = get_field(&r, &op->def_len);
  op->version_id = get_field(&r, NULL);
  op->publish_id = get_field(&r, NULL);
  if (flags & TIME_FLAG)
    op->time_ns = get_time(&r);
  if (flags & TIME2_FLAG)
    op->time2_ns = get_time(&r);
  if (r.failed || !op->project_id || !op->instance_id)
    return -1;
  *offset = r.at;
  return 0;
}
