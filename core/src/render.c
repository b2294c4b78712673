/* JSON renderings of environments, groups, APIs and versions. */
#include <string.h>

#include "handler.h"

void apig_put_time(apig_buf *b, int64_t ns, apig_time_style style) {
  /* Items of one batch share their time: format it once. */
  static _Thread_local int64_t cached_ns = -1;
  static _Thread_local apig_time_style cached_style;
  static _Thread_local char text[APIG_TIME_LEN];
  if (ns != cached_ns || style != cached_style) {
    if (style == APIG_TIME_NANO)
      apig_time_nano(ns, text);
    else
      apig_time_seconds(ns, text);
    cached_ns = ns;
    cached_style = style;
  }
  apig_buf_putc(b, '"');
  apig_buf_puts(b, text);
  apig_buf_putc(b, '"');
}

static void put_key(apig_buf *b, const char *key) {
  apig_buf_putc(b, '"');
  apig_buf_puts(b, key);
  apig_buf_puts(b, "\":");
}

static void put_string(apig_buf *b, const char *key, const char *value) {
  put_key(b, key);
  apig_buf_json_cstr(b, value ? value : "");
}

void apig_render_env(apig_buf *b, const apig_env *env, apig_time_style style) {
  apig_buf_putc(b, '{');
  put_string(b, "id", env->id);
  apig_buf_putc(b, ',');
  put_string(b, "name", env->name);
  apig_buf_putc(b, ',');
  put_string(b, "remark", env->remark);
  apig_buf_putc(b, ',');
  put_key(b, "create_time");
  apig_put_time(b, env->create_ns, style);
  apig_buf_putc(b, '}');
}

void apig_render_group(apig_buf *b, const apig_group *group,
                       apig_time_style style) {
  apig_buf_putc(b, '{');
  put_string(b, "id", group->id);
  apig_buf_putc(b, ',');
  put_string(b, "name", group->name);
  apig_buf_putc(b, ',');
  put_string(b, "remark", group->remark);
  apig_buf_puts(b, ",\"status\":1,\"on_sell_status\":2,\"is_default\":2,"
                   "\"sl_domain_access_enabled\":true,\"sl_domain\":\"");
  apig_buf_puts(b, group->id);
  apig_buf_puts(b, ".apic.localhost\",\"sl_domains\":[\"");
  apig_buf_puts(b, group->id);
  apig_buf_puts(b, ".apic.localhost\"],\"url_domains\":[],");
  put_key(b, "register_time");
  apig_put_time(b, group->register_ns, style);
  apig_buf_putc(b, ',');
  put_key(b, "update_time");
  apig_put_time(b, group->update_ns, style);
  apig_buf_printf(b, ",\"api_count\":%u}", group->api_count);
}

/* Appends the members of a JSON object text without its braces, preceded
 * by a comma when it has any. */
static void put_members(apig_buf *b, const apig_def *def) {
  const char *open = memchr(def->json, '{', def->len);
  const char *close = def->json + def->len;
  while (close > def->json && close[-1] != '}')
    close--;
  if (!open || close <= open + 1)
    return;
  const char *inner = open + 1;
  size_t len = (size_t)(close - 1 - inner);
  size_t skip = 0;
  while (skip < len && (inner[skip] == ' ' || inner[skip] == '\n' ||
                        inner[skip] == '\t' || inner[skip] == '\r'))
    skip++;
  if (skip == len)
    return;
  apig_buf_putc(b, ',');
  apig_buf_append(b, inner + skip, len - skip);
}

/* The '|'-joined publication fields, newest publication first. */
static void put_publications(apig_buf *b, const apig_instance *inst,
                             const apig_api *api, apig_time_style style) {
  apig_api_env *pubs[64];
  size_t n = apig_api_publications(api, pubs, 64);
  static const char *const keys[] = {"run_env_id", "run_env_name",
                                     "publish_id", "publish_time"};
  for (int k = 0; k < 4; k++) {
    apig_buf_puts(b, ",\"");
    apig_buf_puts(b, keys[k]);
    apig_buf_puts(b, "\":\"");
    for (size_t i = 0; i < n; i++) {
      if (i)
        apig_buf_putc(b, '|');
      const apig_env *env = apig_instance_env(inst, pubs[i]->env_id);
      char text[APIG_TIME_LEN];
      switch (k) {
      case 0:
        apig_buf_puts(b, pubs[i]->env_id);
        break;
      case 1: {
        apig_buf json;
        apig_buf_init(&json);
        apig_buf_json_cstr(&json, env ? env->name : "");
        if (json.len >= 2)
          apig_buf_append(b, json.data + 1, json.len - 2);
        apig_buf_free(&json);
        break;
      }
      case 2:
        apig_buf_puts(b, pubs[i]->publish_id);
        break;
      default:
        if (style == APIG_TIME_NANO)
          apig_time_nano(pubs[i]->publish_ns, text);
        else
          apig_time_seconds(pubs[i]->publish_ns, text);
        apig_buf_puts(b, text);
      }
    }
    apig_buf_putc(b, '"');
  }
}

void apig_render_api(apig_buf *b, const apig_instance *inst,
                     const apig_api *api, apig_time_style style) {
  apig_buf_putc(b, '{');
  put_string(b, "id", api->id);
  apig_buf_putc(b, ',');
  put_string(b, "group_id", api->group->id);
  apig_buf_putc(b, ',');
  put_string(b, "group_name", api->group->name);
  apig_buf_puts(b, ",\"status\":1,\"arrange_necessary\":2,");
  put_key(b, "register_time");
  apig_put_time(b, api->register_ns, style);
  apig_buf_putc(b, ',');
  put_key(b, "update_time");
  apig_put_time(b, api->update_ns, style);
  put_publications(b, inst, api, style);
  put_members(b, api->def);
  apig_buf_putc(b, '}');
}

void apig_render_version_item(apig_buf *b, const apig_instance *inst,
                              const apig_api_version *version) {
  const apig_env *env = apig_instance_env(inst, version->slot->env_id);
  char version_no[APIG_TIME_LEN];
  apig_version_no(version->publish_ns, version_no);
  apig_buf_putc(b, '{');
  put_string(b, "version_id", version->id);
  apig_buf_putc(b, ',');
  put_string(b, "version_no", version_no);
  apig_buf_putc(b, ',');
  put_string(b, "api_id", version->api->id);
  apig_buf_putc(b, ',');
  put_string(b, "env_id", version->slot->env_id);
  apig_buf_putc(b, ',');
  put_string(b, "env_name", env ? env->name : "");
  apig_buf_putc(b, ',');
  put_string(b, "remark", version->remark);
  apig_buf_putc(b, ',');
  put_key(b, "publish_time");
  apig_put_time(b, version->publish_ns, APIG_TIME_SECONDS);
  apig_buf_printf(b, ",\"status\":%d}",
                  version->slot->effective == version ? 1 : 2);
}

void apig_render_publish_item(apig_buf *b, const apig_api *api,
                              const apig_api_env *slot) {
  apig_buf_putc(b, '{');
  put_string(b, "publish_id", slot->publish_id);
  apig_buf_putc(b, ',');
  put_string(b, "api_id", api->id);
  apig_buf_putc(b, ',');
  put_string(b, "api_name", api->name);
  apig_buf_putc(b, ',');
  put_string(b, "env_id", slot->env_id);
  apig_buf_putc(b, ',');
  /* The effective version's remark: after a switch it is not the remark
   * of the last publish. */
  put_string(b, "remark", slot->effective ? slot->effective->remark
                                          : slot->publish_remark);
  apig_buf_putc(b, ',');
  put_key(b, "publish_time");
  apig_put_time(b, slot->publish_ns, APIG_TIME_NANO);
  apig_buf_putc(b, ',');
  put_string(b, "version_id", slot->effective ? slot->effective->id : "");
  apig_buf_putc(b, '}');
}

void apig_render_frozen(apig_buf *b, const apig_instance *inst,
                        const apig_api_version *version) {
  const apig_api *api = version->api;
  const apig_api_env *slot = version->slot;
  const apig_env *env = apig_instance_env(inst, slot->env_id);
  apig_buf_putc(b, '{');
  put_string(b, "id", api->id);
  apig_buf_putc(b, ',');
  put_string(b, "group_id", api->group->id);
  apig_buf_putc(b, ',');
  put_string(b, "group_name", api->group->name);
  apig_buf_putc(b, ',');
  put_string(b, "version_id", version->id);
  apig_buf_putc(b, ',');
  put_key(b, "publish_time");
  apig_put_time(b, version->publish_ns, APIG_TIME_SECONDS);
  apig_buf_putc(b, ',');
  put_string(b, "run_env_id", slot->env_id);
  apig_buf_putc(b, ',');
  put_string(b, "run_env_name", env ? env->name : "");
  apig_buf_putc(b, ',');
  put_string(b, "publish_id", slot->effective ? slot->publish_id : "");
  apig_buf_printf(b, ",\"status\":%d",
                  slot->effective == version ? 1 : 2);
  put_members(b, version->def);
  apig_buf_putc(b, '}');
}
