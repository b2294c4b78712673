/* Ops as JSON text, the payload of journal records and snapshots. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

static const char *const kind_names[] = {
    "instance_create", "env_put",  "env_delete", "group_put",
    "group_delete",    "api_put",  "api_delete", "publish",
    "offline",         "switch",   "version_delete"};

#define KIND_COUNT (sizeof kind_names / sizeof kind_names[0])

static void put_str(apig_buf *out, const char *key, const char *value,
                    size_t len) {
  if (!value)
    return;
  apig_buf_puts(out, ",\"");
  apig_buf_puts(out, key);
  apig_buf_puts(out, "\":");
  apig_buf_json_string(out, value, len);
}

void apig_op_encode(apig_buf *out, const apig_op *op) {
  apig_buf_puts(out, "{\"k\":\"");
  apig_buf_puts(out, kind_names[op->kind]);
  apig_buf_putc(out, '"');
#define STR(key, field) put_str(out, key, op->field, op->field ? strlen(op->field) : 0)
  STR("p", project_id);
  STR("i", instance_id);
  STR("id", id);
  STR("env", env_id);
  STR("g", group_id);
  STR("n", name);
  STR("r", remark);
  STR("v", version_id);
  STR("pub", publish_id);
#undef STR
  put_str(out, "d", op->def, op->def_len);
  if (op->time_ns)
    apig_buf_printf(out, ",\"t\":\"%lld\"", (long long)op->time_ns);
  if (op->time2_ns)
    apig_buf_printf(out, ",\"t2\":\"%lld\"", (long long)op->time2_ns);
  apig_buf_putc(out, '}');
}

static const char *get_str(const cJSON *obj, const char *key, size_t *len) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(item))
    return NULL;
  if (len)
    *len = strlen(item->valuestring);
  return item->valuestring;
}

/* Times are nanoseconds, beyond what a double holds exactly, so they are
 * stored as decimal strings. */
static int64_t get_time(const cJSON *obj, const char *key) {
  const char *text = get_str(obj, key, NULL);
  return text ? strtoll(text, NULL, 10) : 0;
}

int apig_op_decode(const void *item, apig_op *op) {
  const cJSON *obj = item;
  memset(op, 0, sizeof *op);
  const char *kind = get_str(obj, "k", NULL);
  if (!kind)
    return -1;
  size_t k = 0;
  while (k < KIND_COUNT && strcmp(kind_names[k], kind) != 0)
    k++;
  if (k == KIND_COUNT)
    return -1;
  op->kind = (apig_op_kind)k;
  op->project_id = get_str(obj, "p", NULL);
  op->instance_id = get_str(obj, "i", NULL);
  op->id = get_str(obj, "id", NULL);
  op->env_id = get_str(obj, "env", NULL);
  op->group_id = get_str(obj, "g", NULL);
  op->name = get_str(obj, "n", NULL);
  op->remark = get_str(obj, "r", NULL);
  op->version_id = get_str(obj, "v", NULL);
  op->publish_id = get_str(obj, "pub", NULL);
  op->def = get_str(obj, "d", &op->def_len);
  op->time_ns = get_time(obj, "t");
  op->time2_ns = get_time(obj, "t2");
  return op->project_id && op->instance_id ? 0 : -1;
}
