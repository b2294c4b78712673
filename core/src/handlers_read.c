/* Read calls: list environments, groups, APIs and versions; show an API. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "handler.h"

/* Collects list items into a page: counts every match for `total` and
 * renders only those inside [offset, offset + limit). */
typedef struct page {
  apig_buf *body;
  long offset, limit;
  long total, size;
} page;

static void page_open(page *p, apig_call *call, const char *key, long offset,
                      long limit) {
  p->body = &call->reply->body;
  p->offset = offset;
  p->limit = limit;
  p->total = p->size = 0;
  call->reply->status = 200;
  apig_buf_reset(p->body);
  apig_buf_puts(p->body, "{\"");
  apig_buf_puts(p->body, key);
  apig_buf_puts(p->body, "\":[");
}

/* Returns 1 when the next match is inside the page (render it then). */
static int page_take(page *p) {
  long index = p->total++;
  if (index < p->offset || p->size >= p->limit)
    return 0;
  if (p->size++ > 0)
    apig_buf_putc(p->body, ',');
  return 1;
}

static void page_close(page *p) {
  apig_buf_printf(p->body, "],\"total\":%ld,\"size\":%ld}", p->total,
                  p->size);
}

static int param_equals(const apig_param *param, const char *value) {
  return strlen(value) == param->value_len &&
         memcmp(value, param->value, param->value_len) == 0;
}

/* Name filters match a substring unless precise_search names the field. */
static int name_matches(const apig_call *call, const char *field,
                        const apig_param *filter, const char *value) {
  if (!filter)
    return 1;
  const apig_param *precise = apig_query(call, "precise_search");
  int exact = precise && precise->value_len > 0 &&
              strstr(precise->value, field) != NULL;
  if (exact)
    return param_equals(filter, value);
  return filter->value_len == 0 || strstr(value, filter->value) != NULL;
}

void apig_handle_env_list(apig_call *call) {
  long offset, limit;
  if (apig_paging(call, &offset, &limit) != 0)
    return;
  const apig_param *name = apig_query(call, "name");
  page p;
  page_open(&p, call, "envs", offset, limit);
  for (apig_env *env = call->inst->envs; env; env = env->hh.next) {
    if (!name_matches(call, "name", name, env->name))
      continue;
    if (page_take(&p))
      apig_render_env(p.body, env, APIG_TIME_SECONDS);
  }
  page_close(&p);
}

void apig_handle_group_list(apig_call *call) {
  long offset, limit;
  if (apig_paging(call, &offset, &limit) != 0)
    return;
  const apig_param *id = apig_query(call, "id");
  const apig_param *name = apig_query(call, "name");
  page p;
  page_open(&p, call, "groups", offset, limit);
  for (apig_group *g = call->inst->groups; g; g = g->hh.next) {
    if ((id && !param_equals(id, g->id)) ||
        !name_matches(call, "name", name, g->name))
      continue;
    if (page_take(&p))
      apig_render_group(p.body, g, APIG_TIME_SECONDS);
  }
  page_close(&p);
}

void apig_handle_group_show(apig_call *call) {
  apig_group *group = apig_instance_group(call->inst, call->path_id);
  if (!group) {
    apig_reply_error(call->reply, APIG_E_GROUP_NOT_FOUND, call->path_id);
    return;
  }
  call->reply->status = 200;
  apig_render_group(&call->reply->body, group, APIG_TIME_SECONDS);
}

/* The filters of GET …/apis. */
typedef struct api_filter {
  const apig_param *id, *name, *group_id, *env_id, *req_method, *req_uri;
  const apig_param *req_protocol, *auth_type, *type;
} api_filter;

static int api_matches(const apig_call *call, const api_filter *f,
                       const apig_api *api) {
  if (f->id && !param_equals(f->id, api->id))
    return 0;
  if (f->group_id && !param_equals(f->group_id, api->group->id))
    return 0;
  if (!name_matches(call, "name", f->name, api->name) ||
      !name_matches(call, "req_uri", f->req_uri, api->req_uri))
    return 0;
  if (f->req_method && !param_equals(f->req_method, api->req_method))
    return 0;
  if (f->req_protocol &&
      !param_equals(f->req_protocol,
                    api->req_protocol ? api->req_protocol : ""))
    return 0;
  if (f->auth_type &&
      !param_equals(f->auth_type, api->auth_type ? api->auth_type : ""))
    return 0;
  if (f->type) {
    char text[16];
    snprintf(text, sizeof text, "%d", api->type);
    if (!param_equals(f->type, text))
      return 0;
  }
  if (f->env_id) {
    apig_api_env *slot = apig_api_slot(api, f->env_id->value);
    if (!slot || !slot->effective)
      return 0;
  }
  return 1;
}

void apig_handle_api_list(apig_call *call) {
  long offset, limit;
  if (apig_paging(call, &offset, &limit) != 0)
    return;
  api_filter f = {
      apig_query(call, "id"),           apig_query(call, "name"),
      apig_query(call, "group_id"),     apig_query(call, "env_id"),
      apig_query(call, "req_method"),   apig_query(call, "req_uri"),
      apig_query(call, "req_protocol"), apig_query(call, "auth_type"),
      apig_query(call, "type")};
  page p;
  page_open(&p, call, "apis", offset, limit);
  for (apig_api *api = call->inst->first_api; api; api = api->next) {
    if (!api_matches(call, &f, api))
      continue;
    if (page_take(&p))
      apig_render_api(p.body, call->inst, api, APIG_TIME_SECONDS);
  }
  page_close(&p);
}

void apig_handle_api_show(apig_call *call) {
  apig_api *api = apig_instance_api(call->inst, call->path_id);
  if (!api) {
    apig_reply_error(call->reply, APIG_E_API_NOT_FOUND, call->path_id);
    return;
  }
  call->reply->status = 200;
  apig_render_api(&call->reply->body, call->inst, api, APIG_TIME_SECONDS);
}

/* Versions of every environment (or one), newest first: a merge of the
 * per-environment histories, which are newest first already. */
void apig_handle_version_list(apig_call *call) {
  long offset, limit;
  if (apig_paging(call, &offset, &limit) != 0)
    return;
  apig_api *api = apig_instance_api(call->inst, call->path_id);
  if (!api) {
    apig_reply_error(call->reply, APIG_E_API_NOT_FOUND, call->path_id);
    return;
  }
  const apig_param *env_id = apig_query(call, "env_id");
  const apig_param *env_name = apig_query(call, "env_name");
  const apig_env *named = NULL;
  if (env_name) {
    named = apig_instance_env_by_name(call->inst, env_name->value);
    if (!named) {
      apig_reply_error(call->reply, APIG_E_QUERY_INVALID, "env_name");
      return;
    }
  }
  int next[64] = {0};
  size_t slots = api->env_count < 64 ? api->env_count : 64;
  page p;
  page_open(&p, call, "api_versions", offset, limit);
  for (;;) {
    const apig_api_version *best = NULL;
    size_t best_slot = 0;
    for (size_t i = 0; i < slots; i++) {
      const apig_api_env *slot = &api->envs[i];
      if ((env_id && !param_equals(env_id, slot->env_id)) ||
          (named && strcmp(named->id, slot->env_id) != 0) ||
          next[i] >= slot->version_count)
        continue;
      const apig_api_version *v = slot->versions[next[i]];
      if (!best || v->publish_ns > best->publish_ns) {
        best = v;
        best_slot = i;
      }
    }
    if (!best)
      break;
    next[best_slot]++;
    if (page_take(&p))
      apig_render_version_item(p.body, call->inst, best);
  }
  page_close(&p);
}
