/* The Lua module "apig": libapig in process, and HTTP serving on a libuv
 * loop that each object owns and runs in the calling thread.
 *
 *   local apig = require "apig"
 *   local gw = assert(apig.open { data_dir = "data", instances = { "p:i" } })
 *   local status, body, headers = gw:request("GET", "/v2/p/apigw/...")
 *   local result = gw:publish { apis = { id }, env_id = env }
 *   gw:close()
 *
 * Serving: gw:serve{listen=..., duration_ms=...} blocks until SIGINT,
 * SIGTERM or the duration ends; gw:listen(address) with gw:step(ms) and
 * gw:stop() lets a script serve and do other work in turns.
 *
 * Bad arguments raise errors; failures return nil, message, code.
 */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "apig.h"

#define HANDLE_TYPE "apig.handle"

typedef struct lapig {
  apig_t *apig; /* NULL once closed, and before apig_open succeeded */
  char *project_id, *instance_id; /* of the first instance, or NULL */
  uv_loop_t loop;
  int loop_ready;
  apig_server *server;
  int stop_done;  /* set by the stop callback */
  lua_State *L;   /* the thread of the call in progress, for log */
  int log_ref;    /* registry reference of the log function, or LUA_NOREF */
} lapig;

/* ---- arguments ---- */

/* Returns the open handle at index 1; raises for a closed one or a value
 * of another type. The handle metatable is upvalue 1. */
static lapig *check_handle(lua_State *L) {
  lapig *h = lua_touserdata(L, 1);
  int ok = h && lua_getmetatable(L, 1) &&
           lua_rawequal(L, -1, lua_upvalueindex(1));
  if (h && ok)
    lua_pop(L, 1);
  if (!ok)
    luaL_typeerror(L, 1, HANDLE_TYPE);
  if (!h->apig)
    luaL_argerror(L, 1, "the apig object is closed");
  h->L = L;
  return h;
}

/* check_handle for in-process calls, which a serving object rejects. */
static lapig *check_idle_handle(lua_State *L) {
  lapig *h = check_handle(L);
  if (h->server)
    luaL_argerror(L, 1,
                  "the apig object is serving: send requests over HTTP, or "
                  "call :stop() first");
  return h;
}

/* Returns the string at idx for use as a C string: one holding a NUL byte
 * would be cut short there (an id "a1\0junk" would act on "a1"), so it
 * raises an argument error naming `what` instead. */
static const char *c_string(lua_State *L, int idx, int arg,
                            const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (s && strlen(s) != len)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "%s must not contain a NUL byte", what));
  return s;
}

/* Reads an optional string field of the table at index arg. */
static const char *opt_string_field(lua_State *L, int arg, const char *key) {
  int type = lua_getfield(L, arg, key);
  const char *value = NULL;
  size_t len;
  if (type == LUA_TSTRING) {
    value = lua_tolstring(L, -1, &len);
    if (strlen(value) != len)
      luaL_argerror(L, arg, lua_pushfstring(
                                L, "field '%s' must not contain a NUL byte",
                                key));
  } else if (type != LUA_TNIL)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "field '%s' must be a string", key));
  lua_pop(L, 1); /* the table still holds the string */
  return value;
}

static lua_Integer opt_int_field(lua_State *L, int arg, const char *key,
                                 lua_Integer min) {
  int type = lua_getfield(L, arg, key);
  lua_Integer value = 0;
  if (type != LUA_TNIL) {
    int isnum = 0;
    value = lua_tointegerx(L, -1, &isnum);
    if (!isnum || value < min)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "field '%s' must be an integer >= %d",
                                    key, (int)min));
  }
  lua_pop(L, 1);
  return value;
}

/* Raises for a key of the table at arg that is not in allowed. */
static void check_keys(lua_State *L, int arg, const char *const *allowed) {
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (size_t i = 0; allowed[i] && !known; i++)
        known = strcmp(lua_tostring(L, -1), allowed[i]) == 0;
    if (!known)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "unknown option '%s'",
                                    luaL_tolstring(L, -1, NULL)));
  }
}

/* Returns nil, message, code: the way the module reports failures. */
static int push_failure(lua_State *L, const char *message, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, message);
  lua_pushstring(L, code);
  return 3;
}

/* ---- open ---- */

static const char *const open_keys[] = {
    "data_dir",      "instances",       "policy",
    "credentials",   "policy_budget",   "policy_memory",
    "max_body",      "max_import_body", "group_api_quota",
    "env_quota",     "fsync",           "snapshot_interval_ms",
    "journal_max_bytes", "log",         "log_level",
    NULL};

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          NULL};

/* Calls the object's log function; an error in it is dropped, because
 * raising here would unwind through the library. */
static void log_to_lua(void *ud, const apig_log_event *event) {
  lapig *h = ud;
  lua_State *L = h->L;
  if (!L || h->log_ref == LUA_NOREF || !lua_checkstack(L, 4))
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->log_ref);
  lua_pushstring(L, level_names[event->level]);
  lua_pushstring(L, event->message);
  lua_pushstring(L, event->request_id);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK)
    lua_pop(L, 1);
}

/* Reads the instances list into a C array kept on the Lua stack as a
 * userdata block. Returns the count. */
static size_t read_instances(lua_State *L, int arg, const char ***out) {
  *out = NULL;
  if (lua_getfield(L, arg, "instances") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    luaL_argerror(L, arg, "field 'instances' must be a list of strings");
  size_t count = (size_t)luaL_len(L, -1);
  const char **list = lua_newuserdatauv(L, (count + 1) * sizeof *list, 0);
  for (size_t i = 0; i < count; i++) {
    if (lua_geti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_argerror(L, arg, "field 'instances' must be a list of strings");
    list[i] = c_string(L, -1, arg, "an instance");
    lua_pop(L, 1); /* the list table keeps the string alive */
  }
  lua_insert(L, -2); /* keep both the table and the block on the stack */
  *out = list;
  return count;
}

static void read_numbers(lua_State *L, int arg, apig_options *o) {
  o->policy_budget = (uint64_t)opt_int_field(L, arg, "policy_budget", 0);
  o->policy_memory = (size_t)opt_int_field(L, arg, "policy_memory", 0);
  o->max_body = (size_t)opt_int_field(L, arg, "max_body", 0);
  o->max_import_body = (size_t)opt_int_field(L, arg, "max_import_body", 0);
  o->group_api_quota = (unsigned)opt_int_field(L, arg, "group_api_quota", 0);
  o->env_quota = (unsigned)opt_int_field(L, arg, "env_quota", 0);
  o->snapshot_interval_ms =
      (uint64_t)opt_int_field(L, arg, "snapshot_interval_ms", 0);
  o->journal_max_bytes =
      (uint64_t)opt_int_field(L, arg, "journal_max_bytes", 0);
}

static void read_log(lua_State *L, int arg, lapig *h, apig_options *o) {
  const char *level = opt_string_field(L, arg, "log_level");
  if (level) {
    int i = 0;
    while (level_names[i] && strcmp(level_names[i], level) != 0)
      i++;
    if (!level_names[i])
      luaL_argerror(L, arg,
                    "field 'log_level' must be debug, info, warn or error");
    o->log_level = (apig_log_level)i;
  }
  int type = lua_getfield(L, arg, "log");
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (type != LUA_TFUNCTION)
    luaL_argerror(L, arg, "field 'log' must be a function");
  h->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  o->log = log_to_lua;
  o->log_ud = h;
}

/* Copies "PROJECT:INSTANCE" into the handle's default ids. */
static int set_default_instance(lapig *h, const char *spec) {
  const char *colon = strchr(spec, ':');
  if (!colon)
    return 0; /* apig_open rejects it with a message */
  h->project_id = strndup(spec, (size_t)(colon - spec));
  h->instance_id = strdup(colon + 1);
  return h->project_id && h->instance_id ? 0 : -1;
}

static int lapig_open(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  check_keys(L, 1, open_keys);
  /* The object exists, closed, before anything is acquired, so __gc
   * releases whatever the steps below manage to take. */
  lapig *h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  h->log_ref = LUA_NOREF;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, -2);
  lua_insert(L, 1); /* object at 1, options at 2 */

  apig_options o;
  apig_options_init(&o);
  o.data_dir = opt_string_field(L, 2, "data_dir");
  o.policy_file = opt_string_field(L, 2, "policy");
  o.credentials_file = opt_string_field(L, 2, "credentials");
  const char *fsync = opt_string_field(L, 2, "fsync");
  if (fsync && strcmp(fsync, "always") != 0 && strcmp(fsync, "off") != 0)
    luaL_argerror(L, 1, "field 'fsync' must be \"always\" or \"off\"");
  o.fsync_mode = fsync && fsync[0] == 'o' ? APIG_FSYNC_OFF : APIG_FSYNC_ALWAYS;
  read_numbers(L, 2, &o);
  o.instance_count = read_instances(L, 2, &o.instances);
  read_log(L, 2, h, &o);
  if (o.instance_count && set_default_instance(h, o.instances[0]) != 0)
    return luaL_error(L, "not enough memory");

  char *errmsg = NULL;
  h->L = L;
  h->apig = apig_open(&o, &errmsg);
  if (!h->apig) {
    lua_pushnil(L);
    lua_pushstring(L, errmsg ? errmsg : "not enough memory");
    lua_pushstring(L, apig_error_code(APIG_E_SYSTEM));
    apig_string_free(errmsg);
    return 3;
  }
  lua_pushvalue(L, 1);
  return 1;
}

/* ---- serving ---- */

static void on_stopped(void *arg) { ((lapig *)arg)->stop_done = 1; }

/* Stops the server and runs the loop until it has answered the requests
 * in flight and closed every connection. */
static void stop_server(lapig *h) {
  if (!h->server)
    return;
  h->stop_done = 0;
  apig_serve_stop(h->server, on_stopped, h);
  while (!h->stop_done)
    uv_run(&h->loop, UV_RUN_ONCE);
  h->server = NULL;
}

static void close_walk(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

static void close_loop(lapig *h) {
  if (!h->loop_ready)
    return;
  while (uv_loop_close(&h->loop) == UV_EBUSY) {
    uv_walk(&h->loop, close_walk, NULL);
    uv_run(&h->loop, UV_RUN_NOWAIT);
  }
  h->loop_ready = 0;
}

static const char *const serve_keys[] = {
    "listen",          "duration_ms",     "max_header_bytes",
    "request_timeout_ms", "idle_timeout_ms", "max_connections",
    "watch_policy",    "allow_remote",    NULL};

static void read_serve_options(lua_State *L, int arg,
                               apig_serve_options *opts) {
  apig_serve_options_init(opts);
  opts->max_header_bytes =
      (size_t)opt_int_field(L, arg, "max_header_bytes", 0);
  opts->request_timeout_ms =
      (uint64_t)opt_int_field(L, arg, "request_timeout_ms", 0);
  opts->idle_timeout_ms =
      (uint64_t)opt_int_field(L, arg, "idle_timeout_ms", 0);
  opts->max_connections =
      (unsigned)opt_int_field(L, arg, "max_connections", 0);
  lua_getfield(L, arg, "watch_policy");
  opts->no_policy_watch = !lua_isnil(L, -1) && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, arg, "allow_remote");
  opts->allow_remote = lua_toboolean(L, -1);
  lua_pop(L, 1);
}

/* Starts serving on address. Returns 1 with the port pushed, or 3 with
 * nil, message, code pushed. */
static int start_serving(lua_State *L, lapig *h, const char *address,
                         const apig_serve_options *opts) {
  if (h->server)
    luaL_argerror(L, 1, "the apig object is serving already");
  if (!h->loop_ready) {
    int rc = uv_loop_init(&h->loop);
    if (rc != 0)
      return push_failure(L, uv_strerror(rc), "APIG.9999");
    h->loop_ready = 1;
  }
  char *errmsg = NULL;
  if (apig_serve(h->apig, &h->loop, address, opts, &h->server, &errmsg) !=
      0) {
    lua_pushnil(L);
    lua_pushstring(L, errmsg ? errmsg : "not enough memory");
    lua_pushstring(L, "APIG.9999");
    apig_string_free(errmsg);
    uv_run(&h->loop, UV_RUN_NOWAIT); /* lets a failed listener close */
    return 3;
  }
  lua_pushinteger(L, apig_server_port(h->server));
  return 1;
}

/* gw:listen(address [, options]) -> port */
static int lapig_listen(lua_State *L) {
  lapig *h = check_handle(L);
  const char *address = luaL_checkstring(L, 2);
  apig_serve_options opts;
  if (lua_isnoneornil(L, 3)) {
    apig_serve_options_init(&opts);
  } else {
    luaL_checktype(L, 3, LUA_TTABLE);
    check_keys(L, 3, serve_keys);
    read_serve_options(L, 3, &opts);
  }
  return start_serving(L, h, address, &opts);
}

static void on_step_timer(uv_timer_t *timer) { (void)timer; }

/* gw:step([timeout_ms]) -> serving: runs the loop once, waiting at most
 * timeout_ms (default 0) for an event. */
static int lapig_step(lua_State *L) {
  lapig *h = check_handle(L);
  lua_Integer timeout = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, timeout >= 0, 2, "timeout must be >= 0");
  if (!h->server) {
    lua_pushboolean(L, 0);
    return 1;
  }
  uv_timer_t timer;
  uv_timer_init(&h->loop, &timer);
  uv_timer_start(&timer, on_step_timer, (uint64_t)timeout, 0);
  uv_run(&h->loop, timeout ? UV_RUN_ONCE : UV_RUN_NOWAIT);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  lua_pushboolean(L, 1);
  return 1;
}

/* gw:stop() -> true: stops serving, after answering requests in flight. */
static int lapig_stop(lua_State *L) {
  lapig *h = check_handle(L);
  stop_server(h);
  lua_pushboolean(L, 1);
  return 1;
}

/* gw:port() -> the port being served, or nil. */
static int lapig_port(lua_State *L) {
  lapig *h = check_handle(L);
  if (!h->server)
    return 0;
  lua_pushinteger(L, apig_server_port(h->server));
  return 1;
}

typedef struct serve_run {
  lapig *h;
  const char *reason;
} serve_run;

static void on_serve_end(serve_run *run, const char *reason) {
  if (!run->reason) {
    run->reason = reason;
    apig_serve_stop(run->h->server, on_stopped, run->h);
  }
}

static void on_serve_signal(uv_signal_t *signal, int signum) {
  on_serve_end(signal->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_serve_timer(uv_timer_t *timer) {
  on_serve_end(timer->data, "duration");
}

/* gw:serve{listen=..., duration_ms=...} -> true, reason: serves until
 * SIGINT, SIGTERM or the end of duration_ms (default: no end). */
static int lapig_serve(lua_State *L) {
  lapig *h = check_handle(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  check_keys(L, 2, serve_keys);
  const char *address = opt_string_field(L, 2, "listen");
  if (!address)
    luaL_argerror(L, 2, "field 'listen' is required, e.g. \"127.0.0.1:0\"");
  lua_Integer duration = opt_int_field(L, 2, "duration_ms", 1);
  apig_serve_options opts;
  read_serve_options(L, 2, &opts);
  int pushed = start_serving(L, h, address, &opts);
  if (pushed != 1)
    return pushed;
  lua_pop(L, 1);

  serve_run run = {h, NULL};
  uv_signal_t sigint, sigterm;
  uv_timer_t timer;
  uv_signal_init(&h->loop, &sigint);
  uv_signal_init(&h->loop, &sigterm);
  uv_timer_init(&h->loop, &timer);
  sigint.data = sigterm.data = timer.data = &run;
  uv_signal_start(&sigint, on_serve_signal, SIGINT);
  uv_signal_start(&sigterm, on_serve_signal, SIGTERM);
  if (duration > 0)
    uv_timer_start(&timer, on_serve_timer, (uint64_t)duration, 0);
  h->stop_done = 0;
  while (!h->stop_done)
    uv_run(&h->loop, UV_RUN_ONCE);
  h->server = NULL;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  lua_pushboolean(L, 1);
  lua_pushstring(L, run.reason);
  return 2;
}

/* ---- requests ---- */

/* Reads the headers table at arg (name -> string) into a C array kept on
 * the Lua stack. Returns the count. */
static size_t read_headers(lua_State *L, int arg, apig_header **out) {
  *out = NULL;
  if (lua_isnoneornil(L, arg))
    return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, "headers must map names to string values");
    lua_pop(L, 1);
    count++;
  }
  apig_header *headers =
      lua_newuserdatauv(L, (count ? count : 1) * sizeof *headers, 0);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    apig_header *header = &headers[i++];
    header->name = lua_tolstring(L, -2, &header->name_len);
    header->value = lua_tolstring(L, -1, &header->value_len);
    lua_pop(L, 1);
  }
  *out = headers;
  return count;
}

/* gw:request(method, target [, headers [, body]]) -> status, body, headers */
static int lapig_request(lua_State *L) {
  lapig *h = check_idle_handle(L);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  const char *method = c_string(L, 2, 2, "the method");
  const char *target = c_string(L, 3, 3, "the target");
  size_t body_len = 0;
  const char *body = luaL_optlstring(L, 5, "", &body_len);
  apig_header *headers;
  size_t header_count = read_headers(L, 4, &headers);
  apig_response *response = NULL;
  if (apig_request(h->apig, method, target, headers, header_count, body,
                   body_len, &response) != 0)
    return push_failure(L, "not enough memory", "APIG.9999");
  lua_pushinteger(L, response->status);
  lua_pushlstring(L, response->body, response->body_len);
  lua_createtable(L, 0, (int)response->header_count);
  for (size_t i = 0; i < response->header_count; i++) {
    const apig_header *header = &response->headers[i];
    lua_pushlstring(L, header->name, header->name_len);
    lua_pushlstring(L, header->value, header->value_len);
    lua_rawset(L, -3);
  }
  apig_response_free(response);
  return 3;
}

static void set_string(lua_State *L, const char *key, const char *value) {
  if (!value)
    return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

static void push_items(lua_State *L, const apig_batch_item *items,
                       size_t count) {
  lua_createtable(L, (int)count, 0);
  for (size_t i = 0; i < count; i++) {
    const apig_batch_item *item = &items[i];
    lua_createtable(L, 0, 8);
    set_string(L, "api_id", item->api_id);
    set_string(L, "api_name", item->api_name);
    set_string(L, "env_id", item->env_id);
    set_string(L, "version_id", item->version_id);
    set_string(L, "publish_id", item->publish_id);
    set_string(L, "publish_time", item->publish_time);
    set_string(L, "remark", item->remark);
    set_string(L, "error_code", item->error_code);
    set_string(L, "error_msg", item->error_msg);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Pushes the result table, or nil, message, code, status for an answer
 * other than 200. */
static int push_result(lua_State *L, const apig_batch_result *result) {
  if (result->status != 200) {
    lua_pushnil(L);
    lua_pushstring(L, result->error_msg ? result->error_msg : "");
    lua_pushstring(L, result->error_code ? result->error_code : "");
    lua_pushinteger(L, result->status);
    return 4;
  }
  lua_createtable(L, 0, 3);
  push_items(L, result->success, result->success_count);
  lua_setfield(L, -2, "success");
  push_items(L, result->failure, result->failure_count);
  lua_setfield(L, -2, "failure");
  set_string(L, "request_id", result->request_id);
  return 1;
}

static const char *const batch_keys[] = {"project_id", "instance_id", "apis",
                                         "env_id",     "remark",
                                         "group_id",   "token",       NULL};

/* Reads the apis list of the table at arg into a C array kept on the Lua
 * stack. */
static size_t read_api_ids(lua_State *L, int arg, const char ***out) {
  *out = NULL;
  if (lua_getfield(L, arg, "apis") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    luaL_argerror(L, arg, "field 'apis' must be a list of API ids");
  size_t count = (size_t)luaL_len(L, -1);
  const char **ids = lua_newuserdatauv(L, (count + 1) * sizeof *ids, 0);
  for (size_t i = 0; i < count; i++) {
    if (lua_geti(L, -2, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_argerror(L, arg, "field 'apis' must be a list of API ids");
    ids[i] = c_string(L, -1, arg, "an API id");
    lua_pop(L, 1);
  }
  *out = ids;
  return count;
}

static int run_batch(lua_State *L, apig_batch_action action) {
  lapig *h = check_idle_handle(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  check_keys(L, 2, batch_keys);
  apig_batch_request request = {.action = action};
  request.project_id = opt_string_field(L, 2, "project_id");
  request.instance_id = opt_string_field(L, 2, "instance_id");
  if (!request.project_id)
    request.project_id = h->project_id;
  if (!request.instance_id)
    request.instance_id = h->instance_id;
  if (!request.project_id || !request.instance_id)
    luaL_argerror(L, 2,
                  "project_id and instance_id are required when open{} "
                  "named no instances");
  request.env_id = opt_string_field(L, 2, "env_id");
  request.remark = opt_string_field(L, 2, "remark");
  request.group_id = opt_string_field(L, 2, "group_id");
  request.token = opt_string_field(L, 2, "token");
  request.api_count = read_api_ids(L, 2, (const char ***)&request.api_ids);
  apig_batch_result *result = NULL;
  if (apig_batch(h->apig, &request, &result) != 0)
    return push_failure(L, "not enough memory", "APIG.9999");
  int pushed = push_result(L, result);
  apig_batch_result_free(result);
  return pushed;
}

/* gw:publish{apis=..., env_id=..., ...} -> {success=..., failure=...} */
static int lapig_publish(lua_State *L) {
  return run_batch(L, APIG_BATCH_ONLINE);
}

/* gw:offline{apis=..., env_id=..., ...} -> {success=..., failure=...} */
static int lapig_offline(lua_State *L) {
  return run_batch(L, APIG_BATCH_OFFLINE);
}

/* gw:snapshot() -> true, or nil, message, code */
static int lapig_snapshot(lua_State *L) {
  lapig *h = check_handle(L);
  if (apig_snapshot(h->apig) != 0)
    return push_failure(L,
                        "snapshot failed: the object has no data_dir or the "
                        "write failed (see the log)",
                        "APIG.9999");
  lua_pushboolean(L, 1);
  return 1;
}

/* gw:close(): stops serving, writes the final snapshot and frees the
 * handle. Closing a closed object does nothing. Also __gc and __close. */
static int lapig_close(lua_State *L) {
  lapig *h = lua_touserdata(L, 1);
  int ok = h && lua_getmetatable(L, 1) &&
           lua_rawequal(L, -1, lua_upvalueindex(1));
  if (!ok)
    return luaL_typeerror(L, 1, HANDLE_TYPE);
  h->L = L;
  stop_server(h);
  close_loop(h);
  if (h->apig) {
    apig_close(h->apig);
    h->apig = NULL;
  }
  free(h->project_id);
  free(h->instance_id);
  h->project_id = h->instance_id = NULL;
  if (h->log_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, h->log_ref);
    h->log_ref = LUA_NOREF;
  }
  h->L = NULL;
  return 0;
}

static int lapig_tostring(lua_State *L) {
  lapig *h = lua_touserdata(L, 1);
  if (h && h->apig)
    lua_pushfstring(L, "apig (%p)", (void *)h);
  else
    lua_pushliteral(L, "apig (closed)");
  return 1;
}

static const luaL_Reg handle_methods[] = {
    {"request", lapig_request}, {"publish", lapig_publish},
    {"offline", lapig_offline}, {"snapshot", lapig_snapshot},
    {"listen", lapig_listen},   {"step", lapig_step},
    {"stop", lapig_stop},       {"port", lapig_port},
    {"serve", lapig_serve},     {"close", lapig_close},
    {NULL, NULL}};

static const luaL_Reg handle_metamethods[] = {{"__gc", lapig_close},
                                              {"__close", lapig_close},
                                              {"__tostring", lapig_tostring},
                                              {"__index", NULL},
                                              {NULL, NULL}};

static const luaL_Reg module_functions[] = {{"open", lapig_open},
                                            {NULL, NULL}};

int luaopen_apig(lua_State *L) {
  luaL_newmetatable(L, HANDLE_TYPE);
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, handle_metamethods, 1);
  luaL_newlibtable(L, handle_methods);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, handle_methods, 1);
  lua_setfield(L, -2, "__index");
  luaL_newlibtable(L, module_functions);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, module_functions, 1);
  lua_pushstring(L, apig_version_string());
  lua_setfield(L, -2, "version");
  lua_pushstring(L, "DEFAULT_ENVIRONMENT_RELEASE_ID");
  lua_setfield(L, -2, "RELEASE");
  return 1;
}
