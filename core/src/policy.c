/* Lua 5.4 policy host: a sandboxed state per policy file, hooks run under
 * an instruction budget and a memory cap.
 *
 * Limits. The allocator counts every byte of the state and rejects growth
 * past the cap. A rejection flags the running call as failed even when the
 * script catches the "not enough memory" error. A count hook charges the
 * budget every `step` instructions; once the budget is spent it flags the
 * call and raises on every later instruction, so a script's own pcall
 * cannot swallow the error for long. Coroutines inherit the hook from the
 * thread that creates them, and every Lua instruction runs while the hook
 * is set, because the hook is installed before the policy file runs.
 *
 * Lua runs error handlers and __gc finalizers with hooks disabled. The
 * sandbox therefore rejects metatables with __gc, and its xpcall skips the
 * script's handler once the call is over a limit.
 */
#include "policy.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

#define DEFAULT_BUDGET 1000000
#define DEFAULT_MEMORY ((size_t)64 << 20)
#define HOOK_STEP 1000 /* instructions between two budget checks */
#define LOG_LINES_PER_CALL 100
#define LOG_LINE_MAX 1000 /* bytes of a script's log message kept */
#define CAUSE_SIZE 512
#define ENV_ID_MAX 64
#define REMARK_MAX 255
#define MODULE_NAME_MAX 128
#define LOAD_ERROR_SIZE 1024
#define VIEW_TYPE "apig.policy.view" /* registry name of the metatable */

enum hook_kind {
  HOOK_MAP_ENV,
  HOOK_AUTHORIZE,
  HOOK_REWRITE_REMARK,
  HOOK_COUNT
};

static const char *const hook_names[HOOK_COUNT] = {"map_env", "authorize",
                                                   "rewrite_remark"};

enum view_kind {
  VIEW_API,
  VIEW_ENV,
  VIEW_CTX,
  VIEW_PUBLISHED,
  VIEW_ENVS,
  VIEW_COUNT
};

struct apig_policy {
  lua_State *L;
  char *path, *dir, *helpers_dir;
  const apig_logger *logger;
  uint64_t budget;
  size_t memory, used;
  int step;
  int64_t remaining; /* instructions left in the running call */
  int budget_exceeded, memory_exceeded;
  int hook_refs[HOOK_COUNT]; /* LUA_NOREF when the file has no such hook */
  int view_refs[VIEW_COUNT];
  int env_ref; /* the sandbox's global table */
  /* Data of the running call, read by the views. NULL between calls. */
  const apig_policy_api *api;
  const apig_policy_env *env;
  const apig_policy_ctx *ctx;
  const char *hook_name;
  unsigned log_lines, log_dropped;
  int cause_set;
  char cause[CAUSE_SIZE];
  apig_policy_stats stats;
};

static apig_policy *policy_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

static const char *request_id_of(const apig_policy *p) {
  return p->ctx && p->ctx->request_id ? p->ctx->request_id : "";
}

/* ---- Limits ---------------------------------------------------------- */

static void *policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  apig_policy *p = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    apig_free(ptr);
    p->used -= old;
    return NULL;
  }
  /* NOTE: Lua retries a refused allocation after an emergency collection,
   * so a call whose garbage alone reaches the cap fails even if the retry
   * would have fit. */
  if (nsize > old &&
      (p->used > p->memory || nsize - old > p->memory - p->used)) {
    p->memory_exceeded = 1;
    return NULL;
  }
  void *block = apig_realloc(ptr, nsize);
  if (!block) {
    /* Lua expects shrinking to succeed: keep the larger block. */
    if (nsize <= old) {
      p->used = p->used - old + nsize;
      return ptr;
    }
    p->memory_exceeded = 1;
    return NULL;
  }
  p->used = p->used - old + nsize;
  return block;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  apig_policy *p = policy_of(L);
  int step = lua_gethookcount(L);
  (void)ar;
  if (!p->budget_exceeded) {
    p->remaining -= step;
    if (p->remaining > 0) {
      if (step != p->step)
        lua_sethook(L, count_hook, LUA_MASKCOUNT, p->step);
      return;
    }
    p->budget_exceeded = 1;
  }
  /* Raise on every instruction until the outermost call has unwound. */
  if (step != 1)
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, 0);
  lua_pushfstring(L, "instruction budget of %I exceeded",
                  (lua_Integer)p->budget);
  lua_concat(L, 2);
  lua_error(L);
}

/* Resets the limits and the per-call state before Lua code runs. */
static void begin_run(apig_policy *p) {
  if (p->used > p->memory / 2)
    lua_gc(p->L, LUA_GCCOLLECT, 0);
  p->remaining = (int64_t)p->budget;
  p->budget_exceeded = 0;
  p->memory_exceeded = 0;
  p->cause_set = 0;
  p->cause[0] = '\0';
  p->log_lines = 0;
  p->log_dropped = 0;
  lua_sethook(p->L, count_hook, LUA_MASKCOUNT, p->step);
}

/* ---- Messages -------------------------------------------------------- */

/* Returns the length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_sequence_len(const char *s, size_t len) {
  for (size_t k = 1; k <= 4 && k <= len; k++)
    if (apig_utf8_count(s, k) == 1)
      return k;
  return 0;
}

/* Appends src to dst[*pos] as one line of valid UTF-8. Control characters
 * become spaces and invalid bytes '?'. Truncates at a character boundary. */
static void append_line(char *dst, size_t size, size_t *pos, const char *src,
                        size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = (unsigned char)src[i];
    size_t n = 1;
    char replacement = 0;
    if (c < 0x20 || c == 0x7f)
      replacement = ' ';
    else if (c >= 0x80 && (n = utf8_sequence_len(src + i, len - i)) == 0) {
      replacement = '?';
      n = 1;
    }
    size_t out = replacement ? 1 : n;
    if (*pos + out >= size)
      break;
    if (replacement)
      dst[*pos] = replacement;
    else
      memcpy(dst + *pos, src + i, n);
    *pos += out;
    i += n;
  }
  if (size)
    dst[*pos < size ? *pos : size - 1] = '\0';
}

/* Returns the length of a leading "chunk:line: " position, or 0. */
static size_t position_prefix_len(const char *s, size_t len) {
  size_t i = 0;
  if (len > 9 && memcmp(s, "[string \"", 9) == 0) {
    const char *end = NULL;
    for (size_t j = 9; j + 1 < len; j++)
      if (s[j] == '"' && s[j + 1] == ']') {
        end = s + j;
        break;
      }
    if (!end)
      return 0;
    i = (size_t)(end - s) + 2;
  } else {
    /* A space ends the candidate path unless the path is absolute or
     * starts with '.', because then it is ordinary text. */
    int spaces = s[0] == '/' || s[0] == '.';
    while (i < len && s[i] != ':' && s[i] != '\n' && (spaces || s[i] != ' '))
      i++;
    if (i == 0)
      return 0;
  }
  if (i >= len || s[i] != ':')
    return 0;
  size_t digits = ++i;
  while (i < len && s[i] >= '0' && s[i] <= '9')
    i++;
  if (i == digits || i + 1 >= len || s[i] != ':' || s[i + 1] != ' ')
    return 0;
  return i + 2;
}

/* Writes "<hook>: <cause>" to err, without position prefixes. */
static void format_hook_error(char *err, size_t err_size, const char *hook,
                              const char *cause) {
  size_t len = strlen(cause), pos = 0;
  for (int i = 0; i < 8; i++) {
    size_t skip = position_prefix_len(cause, len);
    if (!skip)
      break;
    cause += skip;
    len -= skip;
  }
  if (!err_size)
    return;
  err[0] = '\0';
  append_line(err, err_size, &pos, hook, strlen(hook));
  append_line(err, err_size, &pos, ": ", 2);
  append_line(err, err_size, &pos, cause, len);
}

/* Copies the longest prefix of valid UTF-8 src that fits in size bytes. */
static void copy_utf8(char *dst, size_t size, const char *src, size_t len) {
  if (!size)
    return;
  if (len >= size) {
    len = size - 1;
    while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
      len--;
  }
  memcpy(dst, src, len);
  dst[len] = '\0';
}

/* ---- Read-only views ------------------------------------------------- */

typedef struct view_field {
  const char *name;
  size_t offset; /* of a const char * in the viewed struct */
} view_field;

#define API_FIELD(f)                                                           \
  { #f, offsetof(apig_policy_api, f) }
#define ENV_FIELD(f)                                                           \
  { #f, offsetof(apig_policy_env, f) }
#define CTX_FIELD(f)                                                           \
  { #f, offsetof(apig_policy_ctx, f) }

/* Fields other than strings have offset (size_t)-1 and are pushed by
 * push_special_field. */
#define SPECIAL_FIELD(f)                                                       \
  { #f, (size_t)-1 }

static const view_field api_fields[] = {API_FIELD(id),
                                        API_FIELD(name),
                                        API_FIELD(group_id),
                                        API_FIELD(group_name),
                                        API_FIELD(req_method),
                                        API_FIELD(req_uri),
                                        API_FIELD(auth_type),
                                        API_FIELD(remark),
                                        SPECIAL_FIELD(type),
                                        SPECIAL_FIELD(published),
                                        {NULL, 0}};
static const view_field env_fields[] = {
    ENV_FIELD(id), ENV_FIELD(name), ENV_FIELD(remark), {NULL, 0}};
static const view_field ctx_fields[] = {
    CTX_FIELD(action),      CTX_FIELD(project_id),
    CTX_FIELD(instance_id), CTX_FIELD(request_id),
    CTX_FIELD(caller),      SPECIAL_FIELD(batch_size),
    SPECIAL_FIELD(time),    CTX_FIELD(remark),
    SPECIAL_FIELD(envs),    {NULL, 0}};

static const view_field *fields_of(int kind) {
  return kind == VIEW_API   ? api_fields
         : kind == VIEW_ENV ? env_fields
                            : ctx_fields;
}

static const void *data_of(const apig_policy *p, int kind) {
  return kind == VIEW_API   ? (const void *)p->api
         : kind == VIEW_ENV ? (const void *)p->env
                            : (const void *)p->ctx;
}

static void push_special_field(lua_State *L, apig_policy *p, int kind,
                               const char *name) {
  if (kind == VIEW_API && strcmp(name, "type") == 0)
    lua_pushinteger(L, p->api->type);
  else if (kind == VIEW_API)
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->view_refs[VIEW_PUBLISHED]);
  else if (strcmp(name, "batch_size") == 0)
    lua_pushinteger(L, p->ctx->batch_size);
  else if (strcmp(name, "envs") == 0)
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->view_refs[VIEW_ENVS]);
  else
    lua_pushinteger(L, p->ctx->time);
}

/* Pushes field i of a view (nil when unset). */
static void push_field(lua_State *L, apig_policy *p, int kind, size_t i) {
  const void *data = data_of(p, kind);
  const view_field *field = &fields_of(kind)[i];
  if (field->offset == (size_t)-1) {
    push_special_field(L, p, kind, field->name);
    return;
  }
  const char *value =
      *(const char *const *)((const char *)data + field->offset);
  if (value)
    lua_pushstring(L, value);
  else
    lua_pushnil(L);
}

/* Returns the index of key among the fields or env ids of a view, or -1. */
static long find_key(apig_policy *p, int kind, lua_State *L, int index) {
  if (lua_type(L, index) != LUA_TSTRING)
    return -1;
  const char *key = lua_tostring(L, index);
  if (kind == VIEW_PUBLISHED) {
    for (size_t i = 0; i < p->api->published_count; i++)
      if (strcmp(p->api->published_env_ids[i], key) == 0)
        return (long)i;
    return -1;
  }
  const view_field *fields = fields_of(kind);
  for (size_t i = 0; fields[i].name; i++)
    if (strcmp(fields[i].name, key) == 0)
      return (long)i;
  return -1;
}

static int view_kind_of(lua_State *L) {
  return *(const int *)luaL_checkudata(L, 1, VIEW_TYPE);
}

static int view_has_data(apig_policy *p, int kind) {
  if (kind == VIEW_ENVS)
    return p->ctx != NULL;
  return kind == VIEW_PUBLISHED ? p->api != NULL : data_of(p, kind) != NULL;
}

/* Returns the string at index without embedded NUL, or NULL. */
static const char *plain_string(lua_State *L, int index) {
  if (lua_type(L, index) != LUA_TSTRING)
    return NULL;
  size_t len;
  const char *s = lua_tolstring(L, index, &len);
  return strlen(s) == len ? s : NULL;
}

/* ctx.envs[name]: the id of the environment named name, or nil. */
static int envs_index(lua_State *L, apig_policy *p) {
  const apig_policy_envs *envs = p->ctx->envs;
  const char *name = plain_string(L, 2);
  const char *id = envs && name ? envs->id_by_name(envs->data, name) : NULL;
  if (id)
    lua_pushstring(L, id);
  else
    lua_pushnil(L);
  return 1;
}

/* next(ctx.envs, name): the environment after the one named name. */
static int envs_next(lua_State *L, apig_policy *p) {
  const apig_policy_envs *envs = p->ctx->envs;
  const char *name = lua_isnil(L, 2) ? NULL : plain_string(L, 2);
  if (!lua_isnil(L, 2) &&
      !(name && envs && envs->id_by_name(envs->data, name)))
    return luaL_error(L, "invalid key to 'next'");
  const char *next_name, *next_id;
  if (!envs || !envs->env_after(envs->data, name, &next_name, &next_id))
    return 0;
  lua_pushstring(L, next_name);
  lua_pushstring(L, next_id);
  return 2;
}

static int view_index(lua_State *L) {
  apig_policy *p = policy_of(L);
  int kind = view_kind_of(L);
  if (kind == VIEW_ENVS && view_has_data(p, kind))
    return envs_index(L, p);
  long i = view_has_data(p, kind) ? find_key(p, kind, L, 2) : -1;
  if (i < 0)
    lua_pushnil(L);
  else if (kind == VIEW_PUBLISHED)
    lua_pushstring(L, p->api->published_version_ids[i]);
  else
    push_field(L, p, kind, (size_t)i);
  return 1;
}

static int view_newindex(lua_State *L) {
  return luaL_error(L, "attempt to modify a read-only view");
}

/* The iterator of pairs(view): next key after arg 2 that has a value. */
static int view_next(lua_State *L) {
  apig_policy *p = policy_of(L);
  int kind = view_kind_of(L);
  if (!view_has_data(p, kind))
    return 0;
  if (kind == VIEW_ENVS)
    return envs_next(L, p);
  size_t i = lua_isnil(L, 2) ? 0 : (size_t)(find_key(p, kind, L, 2) + 1);
  if (!lua_isnil(L, 2) && i == 0)
    return luaL_error(L, "invalid key to 'next'");
  if (kind == VIEW_PUBLISHED) {
    if (i >= p->api->published_count)
      return 0;
    lua_pushstring(L, p->api->published_env_ids[i]);
    lua_pushstring(L, p->api->published_version_ids[i]);
    return 2;
  }
  const view_field *fields = fields_of(kind);
  for (; fields[i].name; i++) {
    lua_pushstring(L, fields[i].name);
    push_field(L, p, kind, i);
    if (!lua_isnil(L, -1))
      return 2;
    lua_pop(L, 2);
  }
  return 0;
}

static int view_pairs(lua_State *L) {
  lua_pushcfunction(L, view_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static void create_views(lua_State *L, apig_policy *p) {
  static const luaL_Reg methods[] = {{"__index", view_index},
                                     {"__newindex", view_newindex},
                                     {"__pairs", view_pairs},
                                     {NULL, NULL}};
  luaL_newmetatable(L, VIEW_TYPE);
  luaL_setfuncs(L, methods, 0);
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  for (int kind = 0; kind < VIEW_COUNT; kind++) {
    int *payload = lua_newuserdatauv(L, sizeof(int), 0);
    *payload = kind;
    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
    p->view_refs[kind] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
}

/* ---- Sandbox functions ----------------------------------------------- */

static int write_log(lua_State *L, apig_log_level level) {
  apig_policy *p = policy_of(L);
  if (!p->logger || !p->logger->fn || level < p->logger->level)
    return 0;
  if (p->log_lines >= LOG_LINES_PER_CALL) {
    p->log_dropped++;
    return 0;
  }
  p->log_lines++;
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, ' ');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *message = lua_tolstring(L, -1, &len);
  lua_Debug ar;
  const char *source = "?";
  int line = 0;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
    source = ar.short_src;
    line = ar.currentline;
  }
  /* One event per call: newlines in the message cannot forge log lines. */
  char text[LOG_LINE_MAX + 1];
  size_t pos = 0;
  append_line(text, sizeof text, &pos, message, len);
  apig_logf(p->logger, level, request_id_of(p), "policy %s:%d: %s", source,
            line, text);
  return 0;
}

static int log_debug(lua_State *L) { return write_log(L, APIG_LOG_DEBUG); }
static int log_info(lua_State *L) { return write_log(L, APIG_LOG_INFO); }
static int log_warn(lua_State *L) { return write_log(L, APIG_LOG_WARN); }
static int log_error(lua_State *L) { return write_log(L, APIG_LOG_ERROR); }

/* setmetatable that rejects __gc, because Lua runs finalizers with the
 * count hook disabled, at any allocation, even between hook calls. */
static int sandbox_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc metamethods are not allowed in policies");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* Calls the script's message handler unless the call is over a limit:
 * Lua runs handlers of errors raised by the count hook with hooks off. */
static int guarded_handler(lua_State *L) {
  apig_policy *p = policy_of(L);
  if (p->budget_exceeded || p->memory_exceeded) {
    lua_settop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int finish_call(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

static int sandbox_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, n, LUA_MULTRET, 0, finish_call);
  return finish_call(L, LUA_OK, 0);
}

/* load(chunk [, chunkname [, mode [, env]]]) that accepts text only and
 * gives chunks the sandbox as their environment unless env is passed. */
static int sandbox_load(lua_State *L) {
  int has_env = lua_gettop(L) >= 4;
  lua_settop(L, 4);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushliteral(L, "t");
  if (has_env)
    lua_pushvalue(L, 4);
  else
    lua_rawgeti(L, LUA_REGISTRYINDEX, policy_of(L)->env_ref);
  lua_call(L, 4, LUA_MULTRET);
  return lua_gettop(L) - 4;
}

/* A module name is path parts of [A-Za-z0-9_-] joined by single dots. */
static int valid_module_name(const char *name, size_t len) {
  if (len == 0 || len > MODULE_NAME_MAX || name[0] == '.' ||
      name[len - 1] == '.')
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok || (c == '.' && name[i + 1] == '.'))
      return 0;
  }
  return 1;
}

/* Loads dir/rel.lua as text in the sandbox and pushes its result. Returns
 * 0 when the file does not exist. */
static int load_module(lua_State *L, apig_policy *p, const char *dir,
                       const char *rel) {
  const char *path = lua_pushfstring(L, "%s/%s.lua", dir, rel);
  FILE *file = fopen(path, "r");
  if (!file) {
    lua_pop(L, 1);
    return 0;
  }
  fclose(file);
  if (luaL_loadfilex(L, path, "t") != LUA_OK)
    lua_error(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->env_ref);
  lua_setupvalue(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  return 1;
}

/* require(name): NAME.lua with dots as folder separators, from the
 * policy's folder first, then the helpers folder. Upvalue 1 caches the
 * results by name. */
static int sandbox_require(lua_State *L) {
  apig_policy *p = policy_of(L);
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  if (!valid_module_name(name, len) || strlen(name) != len)
    return luaL_error(L,
                      "invalid module name '%s': expected parts of "
                      "letters, digits, '_' and '-' joined by '.'",
                      name);
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  char rel[MODULE_NAME_MAX + 1];
  for (size_t i = 0; i <= len; i++)
    rel[i] = name[i] == '.' ? '/' : name[i];
  if (!load_module(L, p, p->dir, rel) &&
      !(p->helpers_dir && load_module(L, p, p->helpers_dir, rel)))
    return luaL_error(L, "module '%s' not found", name);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_rawset(L, lua_upvalueindex(1));
  return 1;
}

/* ---- Sandbox construction -------------------------------------------- */

/* Sets env[name] to a copy of the library `name`, keeping only `keep`
 * (NULL: all) and dropping `drop`. */
static void copy_library(lua_State *L, int env, const char *name,
                         lua_CFunction open, const char *const *keep,
                         const char *drop) {
  luaL_requiref(L, name, open, 0);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    const char *key =
        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int copied = key && !(drop && strcmp(key, drop) == 0);
    if (copied && keep) {
      copied = 0;
      for (size_t i = 0; keep[i]; i++)
        copied |= strcmp(keep[i], key) == 0;
    }
    if (copied) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_setfield(L, env, name);
  lua_pop(L, 1);
}

static void set_wrapper(lua_State *L, int env, int base, const char *name,
                        lua_CFunction wrapper) {
  lua_getfield(L, base, name);
  lua_pushcclosure(L, wrapper, 1);
  lua_setfield(L, env, name);
}

static void add_base_functions(lua_State *L, int env) {
  static const char *const allowed[] = {
      "assert", "error",    "ipairs",       "next",     "pairs",    "pcall",
      "select", "tonumber", "tostring",     "type",     "rawequal", "rawlen",
      "rawget", "rawset",   "getmetatable", "_VERSION", NULL};
  luaL_requiref(L, "_G", luaopen_base, 0);
  int base = lua_gettop(L);
  for (size_t i = 0; allowed[i]; i++) {
    lua_getfield(L, base, allowed[i]);
    lua_setfield(L, env, allowed[i]);
  }
  set_wrapper(L, env, base, "setmetatable", sandbox_setmetatable);
  set_wrapper(L, env, base, "xpcall", sandbox_xpcall);
  set_wrapper(L, env, base, "load", sandbox_load);
  lua_pop(L, 1);
}

static void add_log_functions(lua_State *L, int env) {
  static const luaL_Reg levels[] = {{"debug", log_debug},
                                    {"info", log_info},
                                    {"warn", log_warn},
                                    {"error", log_error},
                                    {NULL, NULL}};
  luaL_newlib(L, levels);
  lua_setfield(L, env, "log");
  lua_pushcfunction(L, log_info);
  lua_setfield(L, env, "print");
}

/* NOTE: the budget counts VM instructions only, so time spent inside one
 * C function is not charged. Pattern matching (string.find, match, gmatch,
 * gsub) can take quadratic or worse time on a long subject, bounded only
 * by the memory cap on the subject's length. */
static void add_libraries(lua_State *L, int env) {
  static const char *const os_allowed[] = {"time", "date", "clock", NULL};
  copy_library(L, env, LUA_STRLIBNAME, luaopen_string, NULL, "dump");
  /* Methods of strings ("x"):f() must reach the copy, not the library
   * table with dump, and scripts must not reach the metatable. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_getfield(L, env, LUA_STRLIBNAME);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  copy_library(L, env, LUA_TABLIBNAME, luaopen_table, NULL, NULL);
  copy_library(L, env, LUA_MATHLIBNAME, luaopen_math, NULL, NULL);
  copy_library(L, env, LUA_UTF8LIBNAME, luaopen_utf8, NULL, NULL);
  copy_library(L, env, LUA_COLIBNAME, luaopen_coroutine, NULL, NULL);
  copy_library(L, env, LUA_OSLIBNAME, luaopen_os, os_allowed, NULL);
}

static void build_sandbox(lua_State *L, apig_policy *p) {
  lua_newtable(L);
  int env = lua_gettop(L);
  lua_pushvalue(L, env);
  p->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  add_base_functions(L, env);
  add_libraries(L, env);
  add_log_functions(L, env);
  lua_newtable(L);
  lua_pushcclosure(L, sandbox_require, 1);
  lua_setfield(L, env, "require");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
  lua_pop(L, 1);
  create_views(L, p);
}

/* ---- Loading --------------------------------------------------------- */

/* Runs the policy file and keeps references to its hooks. */
static int load_protected(lua_State *L) {
  apig_policy *p = lua_touserdata(L, 1);
  build_sandbox(L, p);
  if (luaL_loadfilex(L, p->path, "t") != LUA_OK)
    return lua_error(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->env_ref);
  lua_setupvalue(L, -2, 1);
  lua_call(L, 0, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s: the policy must return a table, got %s", p->path,
                      luaL_typename(L, -1));
  for (int hook = 0; hook < HOOK_COUNT; hook++) {
    int type = lua_getfield(L, -1, hook_names[hook]);
    if (type == LUA_TNIL) {
      lua_pop(L, 1);
    } else if (type != LUA_TFUNCTION) {
      return luaL_error(L, "%s: policy.%s must be a function, got %s", p->path,
                        hook_names[hook], luaL_typename(L, -1));
    } else {
      p->hook_refs[hook] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  return 0;
}

/* Lua calls this only after an error outside any protected call, which
 * this file avoids; the log line helps if that assumption breaks. */
static int panic(lua_State *L) {
  apig_policy *p = policy_of(L);
  const char *message = lua_tostring(L, -1);
  apig_logf(p->logger, APIG_LOG_ERROR, "",
            "policy %s: unprotected Lua error: %s", p->path,
            message ? message : "(not a string)");
  return 0;
}

static char *load_error(apig_policy *p, int status) {
  char message[LOAD_ERROR_SIZE];
  const char *lua_message = lua_tostring(p->L, -1);
  if (p->budget_exceeded && !(status != LUA_OK && lua_message &&
                              strstr(lua_message, "instruction budget")))
    snprintf(message, sizeof message,
             "%s: instruction budget of %llu exceeded while loading", p->path,
             (unsigned long long)p->budget);
  else if (p->memory_exceeded || status == LUA_ERRMEM)
    snprintf(message, sizeof message,
             "%s: memory limit of %zu bytes exceeded while loading", p->path,
             p->memory);
  else if (lua_type(p->L, -1) == LUA_TSTRING)
    snprintf(message, sizeof message, "%s", lua_message);
  else
    snprintf(message, sizeof message, "%s: error object is a %s value", p->path,
             luaL_typename(p->L, -1));
  return apig_strdup(message);
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return apig_strdup(".");
  if (slash == path)
    return apig_strdup("/");
  return apig_strndup(path, (size_t)(slash - path));
}

static apig_policy *policy_new(const char *path, const char *helpers_dir,
                               const apig_policy_limits *limits,
                               const apig_logger *logger) {
  apig_policy *p = apig_calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->logger = logger;
  p->budget = limits && limits->budget ? limits->budget : DEFAULT_BUDGET;
  p->memory = limits && limits->memory ? limits->memory : DEFAULT_MEMORY;
  p->step = p->budget < HOOK_STEP ? (int)p->budget : HOOK_STEP;
  p->env_ref = LUA_NOREF;
  for (int i = 0; i < HOOK_COUNT; i++)
    p->hook_refs[i] = LUA_NOREF;
  p->path = apig_strdup(path);
  p->dir = dir_of(path);
  p->helpers_dir = helpers_dir ? apig_strdup(helpers_dir) : NULL;
  if (!p->path || !p->dir || (helpers_dir && !p->helpers_dir)) {
    apig_policy_free(p);
    return NULL;
  }
  return p;
}

static void set_errmsg(char **errmsg, char *message) {
  if (errmsg)
    *errmsg = message;
  else
    apig_free(message);
}

apig_policy *apig_policy_load(const char *path, const char *helpers_dir,
                              const apig_policy_limits *limits,
                              const apig_logger *logger, char **errmsg) {
  if (errmsg)
    *errmsg = NULL;
  apig_policy *p = policy_new(path, helpers_dir, limits, logger);
  if (p)
    p->L = lua_newstate(policy_alloc, p);
  if (!p || !p->L) {
    char message[LOAD_ERROR_SIZE];
    if (p)
      snprintf(message, sizeof message,
               "%s: memory limit of %zu bytes exceeded while loading", path,
               p->memory);
    else
      snprintf(message, sizeof message, "%s: out of memory", path);
    set_errmsg(errmsg, apig_strdup(message));
    apig_policy_free(p);
    return NULL;
  }
  lua_atpanic(p->L, panic);
  begin_run(p);
  lua_pushcfunction(p->L, load_protected);
  lua_pushlightuserdata(p->L, p);
  int status = lua_pcall(p->L, 1, 0, 0);
  if (status != LUA_OK || p->budget_exceeded || p->memory_exceeded) {
    set_errmsg(errmsg, load_error(p, status));
    apig_policy_free(p);
    return NULL;
  }
  lua_settop(p->L, 0);
  lua_gc(p->L, LUA_GCCOLLECT, 0);
  apig_logf(logger, APIG_LOG_INFO, "",
            "policy %s loaded: map_env %s, authorize %s, rewrite_remark %s",
            path, apig_policy_has_map_env(p) ? "yes" : "no",
            apig_policy_has_authorize(p) ? "yes" : "no",
            apig_policy_has_rewrite_remark(p) ? "yes" : "no");
  return p;
}

void apig_policy_free(apig_policy *policy) {
  if (!policy)
    return;
  if (policy->L)
    lua_close(policy->L);
  apig_free(policy->path);
  apig_free(policy->dir);
  apig_free(policy->helpers_dir);
  apig_free(policy);
}

int apig_policy_has_map_env(const apig_policy *policy) {
  return policy->hook_refs[HOOK_MAP_ENV] != LUA_NOREF;
}

int apig_policy_has_authorize(const apig_policy *policy) {
  return policy->hook_refs[HOOK_AUTHORIZE] != LUA_NOREF;
}

int apig_policy_has_rewrite_remark(const apig_policy *policy) {
  return policy->hook_refs[HOOK_REWRITE_REMARK] != LUA_NOREF;
}

const apig_policy_stats *apig_policy_get_stats(const apig_policy *policy) {
  return &policy->stats;
}

/* ---- Hook calls ------------------------------------------------------ */

typedef struct hook_call {
  int kind;
  const char *text; /* map_env: env_id; rewrite_remark: remark */
} hook_call;

static void push_view(lua_State *L, apig_policy *p, int kind) {
  if (data_of(p, kind))
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->view_refs[kind]);
  else
    lua_pushnil(L);
}

/* Pushes the hook and its arguments and calls it, inside lua_pcall so
 * that a failed allocation while pushing is a hook error too. */
static int call_trampoline(lua_State *L) {
  apig_policy *p = policy_of(L);
  const hook_call *call = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->hook_refs[call->kind]);
  if (call->kind != HOOK_AUTHORIZE) {
    if (call->text)
      lua_pushstring(L, call->text);
    else
      lua_pushnil(L);
  }
  push_view(L, p, VIEW_API);
  if (call->kind != HOOK_MAP_ENV)
    push_view(L, p, VIEW_ENV);
  push_view(L, p, VIEW_CTX);
  lua_call(L, lua_gettop(L) - 2, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

/* Keeps the first error's one-line cause and returns a traceback for the
 * log. Error objects that are not strings or numbers are described by
 * type; their __tostring is not called because it may raise. */
static int message_handler(lua_State *L) {
  apig_policy *p = policy_of(L);
  int type = lua_type(L, 1);
  const char *message;
  if (type == LUA_TSTRING || type == LUA_TNUMBER)
    message = lua_tostring(L, 1);
  else
    message =
        lua_pushfstring(L, "error object is a %s value", luaL_typename(L, 1));
  if (!p->cause_set) {
    snprintf(p->cause, sizeof p->cause, "%s", message);
    p->cause_set = 1;
  }
  luaL_traceback(L, L, message, 1);
  return 1;
}

static void log_hook_failure(apig_policy *p, const char *err,
                             const char *detail) {
  p->stats.hook_errors++;
  apig_logf(p->logger, APIG_LOG_WARN, request_id_of(p),
            "policy %s: %s failed for API %s: %s%s%s", p->path, p->hook_name,
            p->api && p->api->id ? p->api->id : "-", err, detail ? "\n" : "",
            detail ? detail : "");
}

/* Fills err after a failed call or a call that hit a limit. */
static void fail_call(apig_policy *p, int status, char *err, size_t err_size) {
  char cause[CAUSE_SIZE];
  if (p->budget_exceeded) {
    p->stats.budget_overruns++;
    snprintf(cause, sizeof cause, "instruction budget of %llu exceeded",
             (unsigned long long)p->budget);
  } else if (p->memory_exceeded || status == LUA_ERRMEM) {
    p->stats.memory_overruns++;
    snprintf(cause, sizeof cause, "memory limit of %zu bytes exceeded",
             p->memory);
  } else if (p->cause_set) {
    snprintf(cause, sizeof cause, "%s", p->cause);
  } else {
    snprintf(cause, sizeof cause, "error in the error handler");
  }
  format_hook_error(err, err_size, p->hook_name, cause);
  const char *detail = status != LUA_OK ? lua_tostring(p->L, -1) : NULL;
  log_hook_failure(p, err, detail);
}

/* Runs one hook. Returns the number of results, at stack index 2 and
 * up, or -1 with err filled. The caller ends with end_call. */
static int run_hook(apig_policy *p, const hook_call *call,
                    const apig_policy_api *api, const apig_policy_env *env,
                    const apig_policy_ctx *ctx, char *err, size_t err_size) {
  lua_State *L = p->L;
  p->api = api;
  p->env = env;
  p->ctx = ctx;
  p->hook_name = hook_names[call->kind];
  begin_run(p);
  p->stats.hook_calls++;
  lua_pushcfunction(L, message_handler);
  lua_pushcfunction(L, call_trampoline);
  lua_pushlightuserdata(L, (void *)call);
  int status = lua_pcall(L, 1, LUA_MULTRET, 1);
  if (status == LUA_OK && !p->budget_exceeded && !p->memory_exceeded)
    return lua_gettop(L) - 1;
  fail_call(p, status, err, err_size);
  return -1;
}

static void end_call(apig_policy *p) {
  lua_settop(p->L, 0);
  if (p->log_dropped)
    apig_logf(p->logger, APIG_LOG_WARN, request_id_of(p),
              "policy %s: %s logged too much, %u lines dropped (limit %d "
              "per call)",
              p->path, p->hook_name, p->log_dropped, LOG_LINES_PER_CALL);
  /* Garbage of a call that hit the cap would make the next call hit it. */
  if (p->memory_exceeded)
    lua_gc(p->L, LUA_GCCOLLECT, 0);
  p->api = NULL;
  p->env = NULL;
  p->ctx = NULL;
}

/* Reports a result of the wrong type or value as a hook error. */
static apig_error bad_result(apig_policy *p, char *err, size_t err_size,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static apig_error bad_result(apig_policy *p, char *err, size_t err_size,
                             const char *fmt, ...) {
  char cause[CAUSE_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  format_hook_error(err, err_size, p->hook_name, cause);
  log_hook_failure(p, err, NULL);
  end_call(p);
  return APIG_E_SYSTEM;
}

static void clear(char *s, size_t size) {
  if (s && size)
    s[0] = '\0';
}

apig_error apig_policy_map_env(apig_policy *policy, const char *env_id,
                               const apig_policy_api *api,
                               const apig_policy_ctx *ctx, char **out_env_id,
                               char *err, size_t err_size) {
  *out_env_id = NULL;
  clear(err, err_size);
  if (!apig_policy_has_map_env(policy))
    return APIG_E_OK;
  hook_call call = {HOOK_MAP_ENV, env_id};
  int n = run_hook(policy, &call, api, NULL, ctx, err, err_size);
  if (n < 0) {
    end_call(policy);
    return APIG_E_SYSTEM;
  }
  lua_State *L = policy->L;
  if (n == 0 || lua_isnil(L, 2)) {
    end_call(policy);
    return APIG_E_OK;
  }
  if (lua_type(L, 2) != LUA_TSTRING)
    return bad_result(policy, err, err_size,
                      "returned a %s, expected an environment id or nil",
                      luaL_typename(L, 2));
  size_t len;
  const char *id = lua_tolstring(L, 2, &len);
  if (len == 0 || len > ENV_ID_MAX || apig_utf8_count(id, len) < 0)
    return bad_result(policy, err, err_size,
                      "returned an invalid environment id: expected 1 to "
                      "%d bytes of UTF-8 without NUL",
                      ENV_ID_MAX);
  *out_env_id = apig_strndup(id, len);
  end_call(policy);
  return *out_env_id ? APIG_E_OK : APIG_E_SYSTEM;
}

/* Returns 1 for "APIG." followed by exactly four digits. */
static int valid_error_code(const char *s, size_t len) {
  if (len != 9 || memcmp(s, "APIG.", 5) != 0)
    return 0;
  for (size_t i = 5; i < 9; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static void copy_denial(lua_State *L, int n, char *message, size_t message_size,
                        char code[16]) {
  size_t len;
  if (n >= 2 && lua_type(L, 3) == LUA_TSTRING) {
    const char *text = lua_tolstring(L, 3, &len);
    if (apig_utf8_count(text, len) >= 0)
      copy_utf8(message, message_size, text, len);
  }
  if (n >= 3 && lua_type(L, 4) == LUA_TSTRING) {
    const char *text = lua_tolstring(L, 4, &len);
    if (valid_error_code(text, len))
      memcpy(code, text, len + 1);
  }
}

apig_error apig_policy_authorize(apig_policy *policy,
                                 const apig_policy_api *api,
                                 const apig_policy_env *env,
                                 const apig_policy_ctx *ctx, int *allowed,
                                 char *message, size_t message_size,
                                 char code[16], char *err, size_t err_size) {
  *allowed = 0;
  clear(message, message_size);
  code[0] = '\0';
  clear(err, err_size);
  if (!apig_policy_has_authorize(policy)) {
    *allowed = 1;
    return APIG_E_OK;
  }
  hook_call call = {HOOK_AUTHORIZE, NULL};
  int n = run_hook(policy, &call, api, env, ctx, err, err_size);
  if (n < 0) {
    end_call(policy);
    return APIG_E_SYSTEM;
  }
  lua_State *L = policy->L;
  if (n >= 1 && lua_type(L, 2) == LUA_TBOOLEAN && lua_toboolean(L, 2))
    *allowed = 1;
  else
    copy_denial(L, n, message, message_size, code);
  end_call(policy);
  return APIG_E_OK;
}

apig_error apig_policy_rewrite_remark(apig_policy *policy, const char *remark,
                                      const apig_policy_api *api,
                                      const apig_policy_env *env,
                                      const apig_policy_ctx *ctx, char **out,
                                      char *err, size_t err_size) {
  *out = NULL;
  clear(err, err_size);
  if (!apig_policy_has_rewrite_remark(policy)) {
    *out = remark ? apig_strdup(remark) : NULL;
    return remark && !*out ? APIG_E_SYSTEM : APIG_E_OK;
  }
  hook_call call = {HOOK_REWRITE_REMARK, remark};
  int n = run_hook(policy, &call, api, env, ctx, err, err_size);
  if (n < 0) {
    end_call(policy);
    return APIG_E_SYSTEM;
  }
  lua_State *L = policy->L;
  if (n == 0 || lua_type(L, 2) != LUA_TSTRING)
    return bad_result(policy, err, err_size, "returned %s, expected a string",
                      n == 0 ? "nothing" : luaL_typename(L, 2));
  size_t len;
  const char *text = lua_tolstring(L, 2, &len);
  long count = apig_utf8_count(text, len);
  if (count < 0)
    return bad_result(policy, err, err_size,
                      "returned a remark that is not valid UTF-8 or "
                      "holds NUL");
  if (count > REMARK_MAX)
    return bad_result(policy, err, err_size,
                      "returned a remark of %ld characters, the maximum is "
                      "%d",
                      count, REMARK_MAX);
  *out = apig_strndup(text, len);
  end_call(policy);
  return *out ? APIG_E_OK : APIG_E_SYSTEM;
}
