/* Input rules shared by the create and update calls and the importer. */
#include "validate.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Decodes one UTF-8 code point of valid input; returns its length. */
static int decode(const unsigned char *s, unsigned *cp) {
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] < 0xe0) {
    *cp = (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    return 2;
  }
  if (s[0] < 0xf0) {
    *cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 |
          (s[2] & 0x3f);
    return 3;
  }
  *cp = (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 |
        (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
  return 4;
}

static int is_alnum(unsigned cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
         (cp >= '0' && cp <= '9');
}

/* CJK Unified Ideographs and Extension A. */
static int is_cjk(unsigned cp) {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf);
}

int apig_valid_env_name(const char *name) {
  size_t len = strlen(name);
  if (len < 3 || len > 64)
    return 0;
  if (!((name[0] >= 'a' && name[0] <= 'z') ||
        (name[0] >= 'A' && name[0] <= 'Z')))
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_alnum((unsigned char)name[i]) && name[i] != '_')
      return 0;
  return 1;
}

int apig_valid_name(const char *name) {
  long chars = apig_utf8_count(name, strlen(name));
  if (chars < 3 || chars > 255)
    return 0;
  const unsigned char *p = (const unsigned char *)name;
  for (int first = 1; *p; first = 0) {
    unsigned cp;
    p += decode(p, &cp);
    if (is_alnum(cp) || is_cjk(cp))
      continue;
    if (first || !strchr("-_./:()", (int)cp) || cp == 0)
      return 0;
  }
  return 1;
}

void apig_make_name(const char *text, char *out, size_t size) {
  size_t len = 0;
  long chars = 0;
  const unsigned char *p = (const unsigned char *)text;
  int valid_utf8 = apig_utf8_count(text, strlen(text)) >= 0;
  while (*p && chars < 255 && len + 5 < size) {
    unsigned cp;
    int n = valid_utf8 ? decode(p, &cp) : 1;
    if (!valid_utf8)
      cp = *p;
    int keep = is_alnum(cp) || is_cjk(cp) ||
               (len > 0 && cp < 0x80 && strchr("-_./:()", (int)cp));
    if (keep) {
      memcpy(out + len, p, (size_t)n);
      len += (size_t)n;
    } else if (len > 0 || chars == 0) {
      if (len == 0) {
        memcpy(out, "api_", 4);
        len = 4;
        chars = 4;
        p += n;
        continue;
      }
      out[len++] = '_';
    }
    chars++;
    p += n;
  }
  while (chars < 3 && len + 1 < size) {
    out[len++] = '_';
    chars++;
  }
  out[len] = '\0';
  if (!apig_valid_name(out))
    snprintf(out, size, "api_%.200s", "unnamed");
}

int apig_valid_remark(const char *remark) {
  long chars = apig_utf8_count(remark, strlen(remark));
  return chars >= 0 && chars <= 255;
}

static const char *string_field(const cJSON *body, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(body, key);
  return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int one_of(const char *value, const char *const *allowed) {
  for (; value && *allowed; allowed++)
    if (strcmp(value, *allowed) == 0)
      return 1;
  return 0;
}

static const char *const protocols[] = {"HTTP", "HTTPS", "BOTH", "GRPCS",
                                        NULL};
static const char *const methods[] = {"GET",  "POST",    "PUT", "DELETE",
                                      "HEAD", "PATCH", "OPTIONS", "ANY",
                                      NULL};
static const char *const auth_types[] = {"NONE", "APP", "IAM", "AUTHORIZER",
                                         NULL};
static const char *const backend_types[] = {"HTTP", "FUNCTION", "MOCK",
                                            "GRPC", NULL};

static int valid_uri(const char *uri) {
  size_t len = uri ? strlen(uri) : 0;
  return len >= 1 && len <= 512 && uri[0] == '/' &&
         apig_utf8_count(uri, len) >= 0;
}

static const char *check_backend(const cJSON *body, const char *type) {
  if (strcmp(type, "MOCK") == 0) {
    const cJSON *mock = cJSON_GetObjectItemCaseSensitive(body, "mock_info");
    return cJSON_IsObject(mock) ? NULL : "mock_info";
  }
  if (strcmp(type, "HTTP") == 0) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(body, "backend_api");
    if (!cJSON_IsObject(b))
      return "backend_api";
    if (!one_of(string_field(b, "req_method"), methods))
      return "backend_api.req_method";
    if (!valid_uri(string_field(b, "req_uri")))
      return "backend_api.req_uri";
    const char *domain = string_field(b, "url_domain");
    if (!domain || !domain[0] || strlen(domain) > 255)
      return "backend_api.url_domain";
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(b, "timeout");
    if (!cJSON_IsNumber(timeout) || timeout->valuedouble < 1 ||
        timeout->valuedouble > 600000 ||
        timeout->valuedouble != (double)(long)timeout->valuedouble)
      return "backend_api.timeout";
  }
  return NULL;
}

/* Keys the server owns; a client's copy of them is dropped. */
static const char *const server_keys[] = {
    "id",           "group_id",     "group_name",   "status",
    "register_time", "update_time", "run_env_id",   "run_env_name",
    "publish_id",   "publish_time", "version_id",   "arrange_necessary",
    NULL};

static char *definition_text(const cJSON *body) {
  cJSON *copy = cJSON_Duplicate(body, 1);
  if (!copy)
    return NULL;
  for (const char *const *key = server_keys; *key; key++)
    cJSON_DeleteItemFromObjectCaseSensitive(copy, *key);
  char *text = cJSON_PrintUnformatted(copy);
  cJSON_Delete(copy);
  return text;
}

apig_error apig_check_api_body(apig_call *call, const cJSON *body,
                               apig_group **group, char **def_out,
                               const char **param) {
  static const char *const required[] = {
      "group_id", "name",     "type",        "req_protocol",
      "req_method", "req_uri", "auth_type", "backend_type", NULL};
  for (const char *const *key = required; *key; key++)
    if (!cJSON_GetObjectItemCaseSensitive(body, *key)) {
      *param = *key;
      return APIG_E_PARAM_MISSING;
    }
  const char *name = string_field(body, "name");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "type");
  const char *remark = string_field(body, "remark");
  const cJSON *remark_item = cJSON_GetObjectItemCaseSensitive(body, "remark");
  const char *backend = string_field(body, "backend_type");
  *param = NULL;
  if (!string_field(body, "group_id"))
    *param = "group_id";
  else if (!name || !apig_valid_name(name))
    *param = "name";
  else if (!cJSON_IsNumber(type) ||
           (type->valuedouble != 1 && type->valuedouble != 2))
    *param = "type";
  else if (!one_of(string_field(body, "req_protocol"), protocols))
    *param = "req_protocol";
  else if (!one_of(string_field(body, "req_method"), methods))
    *param = "req_method";
  else if (!valid_uri(string_field(body, "req_uri")))
    *param = "req_uri";
  else if (!one_of(string_field(body, "auth_type"), auth_types))
    *param = "auth_type";
  else if (!one_of(backend, backend_types))
    *param = "backend_type";
  else if (remark_item && (!remark || !apig_valid_remark(remark)))
    *param = "remark";
  else
    *param = check_backend(body, backend);
  if (*param)
    return APIG_E_PARAM_INVALID;
  *group = apig_instance_group(call->inst, string_field(body, "group_id"));
  if (!*group) {
    *param = string_field(body, "group_id");
    return APIG_E_GROUP_NOT_FOUND;
  }
  *def_out = definition_text(body);
  return *def_out ? APIG_E_OK : APIG_E_SYSTEM;
}

apig_error apig_check_api_unique(const apig_instance *inst,
                                 const apig_group *group, const char *name,
                                 const char *method, const char *uri,
                                 const apig_api *except) {
  (void)inst;
  for (const apig_api *api = group->first_api; api; api = api->group_next) {
    if (api == except)
      continue;
    if (strcmp(api->name, name) == 0)
      return APIG_E_API_NAME_EXISTS;
    if (strcmp(api->req_method, method) == 0 &&
        strcmp(api->req_uri, uri) == 0)
      return APIG_E_API_ROUTE_EXISTS;
  }
  return APIG_E_OK;
}

int apig_check_api_target(apig_call *call, const cJSON *body,
                          const apig_api *api, const apig_group *group) {
  const char *name = cJSON_GetObjectItem(body, "name")->valuestring;
  const char *method = cJSON_GetObjectItem(body, "req_method")->valuestring;
  const char *uri = cJSON_GetObjectItem(body, "req_uri")->valuestring;
  apig_error error =
      apig_check_api_unique(call->inst, group, name, method, uri, api);
  if (error != APIG_E_OK) {
    char route[600];
    snprintf(route, sizeof route, "%s %s", method, uri);
    apig_reply_error(call->reply, error,
                     error == APIG_E_API_NAME_EXISTS ? name : route);
    return -1;
  }
  unsigned quota = call->apig->options.group_api_quota;
  if ((!api || group != api->group) && group->api_count >= quota) {
    char text[16];
    snprintf(text, sizeof text, "%u", quota);
    apig_reply_error(call->reply, APIG_E_GROUP_API_QUOTA, text);
    return -1;
  }
  return 0;
}
