/* Tests of the Lua policy host: sandbox, limits, views and hook results,
 * against real Lua states and policy files in a temporary folder. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "policy.h"
#include "testlib.h"

static char folder[64];
static apig_buf log_text;
static int file_counter;

static void capture_log(void *ud, const apig_log_event *event) {
  static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  (void)ud;
  apig_buf_printf(&log_text, "%s [%s] %s\n", names[event->level],
                  event->request_id, event->message);
}

static const apig_logger logger = {capture_log, NULL, APIG_LOG_DEBUG, NULL};

static const char *log_contains(const char *needle) {
  return log_text.data ? strstr(log_text.data, needle) : NULL;
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *file = fopen(path, "wb");
  if (!file) {
    perror(path);
    exit(2);
  }
  fwrite(text, 1, len, file);
  fclose(file);
}

/* Writes src to a new file in the test folder; returns its path. */
static const char *write_policy(const char *src) {
  static char path[128];
  snprintf(path, sizeof path, "%s/policy%d.lua", folder, ++file_counter);
  write_file(path, src, strlen(src));
  return path;
}

static apig_policy *load_limited(const char *src, uint64_t budget,
                                 size_t memory) {
  apig_policy_limits limits = {budget, memory};
  char *errmsg = NULL;
  apig_policy *policy =
      apig_policy_load(write_policy(src), NULL, &limits, &logger, &errmsg);
  if (!policy)
    fprintf(stderr, "policy failed to load: %s\n", errmsg);
  apig_free(errmsg);
  return policy;
}

static apig_policy *load(const char *src) {
  return load_limited(src, 200000, 16 << 20);
}

/* Returns the load error of src (static storage) or "" if it loaded. */
static const char *load_error(const char *src, uint64_t budget, size_t memory) {
  static char message[1024];
  apig_policy_limits limits = {budget, memory};
  char *errmsg = NULL;
  apig_policy *policy =
      apig_policy_load(write_policy(src), NULL, &limits, &logger, &errmsg);
  snprintf(message, sizeof message, "%s", errmsg ? errmsg : "");
  apig_free(errmsg);
  apig_policy_free(policy);
  return message;
}

static const char *const published_envs[] = {"RELEASE", "TEST"};
static const char *const published_versions[] = {"v1", "v2"};

static apig_policy_api make_api(const char *id, const char *name) {
  apig_policy_api api = {id,    name,    "g1",           "group_one",
                         "GET", "/pets", "APP",          "old remark",
                         1,     2,       published_envs, published_versions};
  return api;
}

static const apig_policy_env test_env = {"RELEASE", "RELEASE", "release env"};
static const apig_policy_ctx test_ctx = {
    "online", "p1", "i1", "req-1", "good", 3, 1700000000, "asked", NULL};

typedef struct verdict {
  apig_error status;
  int allowed;
  char message[256], code[16], err[256];
} verdict;

static verdict authorize(apig_policy *policy, const char *api_id,
                         const char *api_name) {
  verdict v;
  apig_policy_api api = make_api(api_id, api_name);
  v.status = apig_policy_authorize(policy, &api, &test_env, &test_ctx,
                                   &v.allowed, v.message, sizeof v.message,
                                   v.code, v.err, sizeof v.err);
  return v;
}

/* Checks that a hook error is one line without traceback or path. */
static void check_clean_error(const char *err) {
  CHECK(strchr(err, '\n') == NULL);
  CHECK(strstr(err, "traceback") == NULL);
  CHECK(strstr(err, ".lua") == NULL);
  CHECK(strstr(err, folder) == NULL);
}

static void check_allows_normally(apig_policy *policy) {
  verdict v = authorize(policy, "a2", "fine");
  CHECK_INT(v.status, APIG_E_OK);
  CHECK_INT(v.allowed, 1);
  CHECK_STR(v.err, "");
}

/* ---- views ----------------------------------------------------------- */

static void test_views(void) {
  apig_policy *policy = load(
      "local p = {}\n"
      "local function expect(got, want, what)\n"
      "  if got ~= want then\n"
      "    error(what .. ' is ' .. tostring(got), 0)\n"
      "  end\n"
      "end\n"
      "function p.authorize(api, env, ctx)\n"
      "  expect(api.id, 'a1', 'api.id')\n"
      "  expect(api.name, 'one', 'api.name')\n"
      "  expect(api.group_id, 'g1', 'api.group_id')\n"
      "  expect(api.group_name, 'group_one', 'api.group_name')\n"
      "  expect(api.req_method, 'GET', 'api.req_method')\n"
      "  expect(api.req_uri, '/pets', 'api.req_uri')\n"
      "  expect(api.auth_type, 'APP', 'api.auth_type')\n"
      "  expect(api.remark, 'old remark', 'api.remark')\n"
      "  expect(api.type, 1, 'api.type')\n"
      "  expect(api.missing, nil, 'api.missing')\n"
      "  expect(api[1], nil, 'api[1]')\n"
      "  expect(api.published.RELEASE, 'v1', 'published.RELEASE')\n"
      "  expect(api.published.TEST, 'v2', 'published.TEST')\n"
      "  expect(api.published.NONE, nil, 'published.NONE')\n"
      "  local count = 0\n"
      "  for k, v in pairs(api.published) do count = count + 1 end\n"
      "  expect(count, 2, 'published count')\n"
      "  local fields = 0\n"
      "  for k, v in pairs(api) do fields = fields + 1 end\n"
      "  expect(fields, 10, 'api fields')\n"
      "  expect(env.id, 'RELEASE', 'env.id')\n"
      "  expect(env.remark, 'release env', 'env.remark')\n"
      "  expect(ctx.action, 'online', 'ctx.action')\n"
      "  expect(ctx.project_id, 'p1', 'ctx.project_id')\n"
      "  expect(ctx.instance_id, 'i1', 'ctx.instance_id')\n"
      "  expect(ctx.request_id, 'req-1', 'ctx.request_id')\n"
      "  expect(ctx.caller, 'good', 'ctx.caller')\n"
      "  expect(ctx.batch_size, 3, 'ctx.batch_size')\n"
      "  expect(ctx.time, 1700000000, 'ctx.time')\n"
      "  expect(ctx.remark, 'asked', 'ctx.remark')\n"
      "  expect(ctx.envs.RELEASE, nil, 'ctx.envs without environments')\n"
      "  for name in pairs(ctx.envs) do expect(name, nil, 'ctx.envs') end\n"
      "  expect(getmetatable(api), 'read-only', 'getmetatable(api)')\n"
      "  expect(pcall(function() api.id = 'x' end), false, 'api write')\n"
      "  expect(pcall(function() env.id = 'x' end), false, 'env write')\n"
      "  expect(pcall(function() ctx.caller = 'x' end), false, 'ctx write')\n"
      "  expect(pcall(function() api.published.TEST = 'x' end), false,\n"
      "         'published write')\n"
      "  expect(pcall(rawset, api, 'id', 'x'), false, 'rawset')\n"
      "  expect(pcall(setmetatable, api, {}), false, 'setmetatable')\n"
      "  expect(pcall(table.insert, api.published, 'x'), false, 'insert')\n"
      "  expect(api.id, 'a1', 'api.id after writes')\n"
      "  return true\n"
      "end\n"
      "return p\n");
  CHECK(policy != NULL);
  if (!policy)
    return;
  verdict v = authorize(policy, "a1", "one");
  CHECK_STR(v.err, "");
  CHECK_INT(v.allowed, 1);
  apig_policy_free(policy);
}

/* ---- sandbox --------------------------------------------------------- */

static int write_chunk(lua_State *L, const void *p, size_t size, void *ud) {
  (void)L;
  apig_buf_append(ud, p, size);
  return 0;
}

/* Returns bytecode of `return io` as a Lua string literal (static). */
static const char *bytecode_literal(void) {
  static char literal[8192];
  lua_State *L = luaL_newstate();
  apig_buf code;
  apig_buf_init(&code);
  luaL_loadstring(L, "return io");
  lua_dump(L, write_chunk, &code, 0);
  lua_close(L);
  size_t pos = 0;
  literal[pos++] = '"';
  for (size_t i = 0; i < code.len && pos + 8 < sizeof literal; i++)
    pos += (size_t)snprintf(literal + pos, sizeof literal - pos, "\\%03u",
                            (unsigned char)code.data[i]);
  literal[pos++] = '"';
  literal[pos] = '\0';
  apig_buf_free(&code);
  return literal;
}

static void test_sandbox_escapes(void) {
  char src[16384];
  snprintf(src, sizeof src,
           "local BC = %s\n"
           "local F = '%s'\n"
           "local attempts = {\n"
           "  io_open = function() return io.open(F .. '/io', 'w') end,\n"
           "  execute = function()\n"
           "    return os.execute('touch ' .. F .. '/exec')\n"
           "  end,\n"
           "  getenv = function() return os.getenv('HOME') end,\n"
           "  require_io = function() return require('io') end,\n"
           "  loadlib = function() return package.loadlib('x', 'y') end,\n"
           "  registry = function() return debug.getregistry() end,\n"
           "  load_io = function() return load('return io')() end,\n"
           "  load_g_io = function() return load('return _G.io')() end,\n"
           "  dump = function() return string.dump(print) end,\n"
           "  method_dump = function() return ('').dump end,\n"
           "  meta_dump = function()\n"
           "    return getmetatable('').__index.dump\n"
           "  end,\n"
           "  bytecode_b = function() return load(BC, 'x', 'b') end,\n"
           "  bytecode_bt = function() return load(BC, 'x', 'bt') end,\n"
           "  bytecode = function() return load(BC) end,\n"
           "  bytecode_reader = function()\n"
           "    local done = false\n"
           "    return load(function()\n"
           "      if done then return nil end\n"
           "      done = true\n"
           "      return BC\n"
           "    end)\n"
           "  end,\n"
           "  loadfile = function() return loadfile(F .. '/x.lua') end,\n"
           "  dofile = function() return dofile(F .. '/x.lua') end,\n"
           "  gc = function() return collectgarbage('stop') end,\n"
           "  gc_meta = function()\n"
           "    return setmetatable({}, {__gc = function() end})\n"
           "  end,\n"
           "  env_io = function() return _ENV.io end,\n"
           "  os_remove = function() return os.remove(F .. '/x') end,\n"
           "}\n"
           "local p = {}\n"
           "function p.authorize(api)\n"
           "  for name, attempt in pairs(attempts) do\n"
           "    local ok, value = pcall(attempt)\n"
           "    if ok and value then\n"
           "      return false, 'escaped: ' .. name\n"
           "    end\n"
           "  end\n"
           "  return true\n"
           "end\n"
           "return p\n",
           bytecode_literal(), folder);
  apig_policy *policy = load(src);
  CHECK(policy != NULL);
  if (!policy)
    return;
  verdict v = authorize(policy, "a1", "one");
  CHECK_INT(v.status, APIG_E_OK);
  CHECK_STR(v.message, "");
  CHECK_INT(v.allowed, 1);
  char path[128];
  snprintf(path, sizeof path, "%s/io", folder);
  CHECK(access(path, F_OK) != 0);
  snprintf(path, sizeof path, "%s/exec", folder);
  CHECK(access(path, F_OK) != 0);
  apig_policy_free(policy);
}

static void test_sandbox_keeps_basics(void) {
  apig_policy *policy = load(
      "local p = {}\n"
      "counter = 0\n"
      "function p.authorize(api)\n"
      "  assert(('abc'):upper() == 'ABC')\n"
      "  assert(getmetatable('') == 'read-only')\n"
      "  assert(type(os.time()) == 'number' and os.date('%Y') and\n"
      "         os.clock() >= 0)\n"
      "  assert(math.max(1, 2) == 2 and utf8.len('\\u{e9}') == 1)\n"
      "  assert(table.concat({'a', 'b'}) == 'ab')\n"
      "  assert(load('return _G')() == _G)\n"
      "  assert(load('return x', 'chunk', 't', {x = 5})() == 5)\n"
      "  assert(select('#', 1, 2) == 2 and tonumber('7') == 7)\n"
      "  local co = coroutine.wrap(function() coroutine.yield(1) end)\n"
      "  assert(co() == 1)\n"
      "  local ok, e = xpcall(error, function(m) return 'handled ' .. m end,\n"
      "                       'x', 0)\n"
      "  assert(not ok and e == 'handled x')\n"
      "  counter = counter + 1\n"
      "  return counter == 2\n"
      "end\n"
      "return p\n");
  CHECK(policy != NULL);
  if (!policy)
    return;
  verdict v = authorize(policy, "a1", "one");
  CHECK_STR(v.err, "");
  CHECK_INT(v.allowed, 0);
  v = authorize(policy, "a1", "one");
  CHECK_STR(v.err, "");
  CHECK_INT(v.allowed, 1);
  apig_policy_free(policy);
}

/* ---- limits ---------------------------------------------------------- */

static void check_budget_stop(const char *name, const char *body) {
  char src[2048];
  snprintf(src, sizeof src,
           "local p = {}\n"
           "local co = coroutine.wrap(function() while true do end end)\n"
           "function p.authorize(api)\n"
           "  if api.name ~= 'loop' then return true end\n"
           "%s\n"
           "  return true\n"
           "end\n"
           "return p\n",
           body);
  apig_policy *policy = load_limited(src, 100000, 16 << 20);
  CHECK(policy != NULL);
  if (!policy)
    return;
  fprintf(stderr, "budget case: %s\n", name);
  verdict v = authorize(policy, "a1", "loop");
  CHECK_INT(v.status, APIG_E_SYSTEM);
  CHECK_STR(v.err, "authorize: instruction budget of 100000 exceeded");
  CHECK_INT(v.allowed, 0);
  CHECK_INT(apig_policy_get_stats(policy)->budget_overruns, 1);
  check_allows_normally(policy);
  CHECK_INT(apig_policy_get_stats(policy)->hook_calls, 2);
  CHECK_INT(apig_policy_get_stats(policy)->hook_errors, 1);
  apig_policy_free(policy);
}

static void test_budget(void) {
  check_budget_stop("plain loop", "while true do end");
  check_budget_stop("sethook then loop",
                    "pcall(function() debug.sethook() end)\n"
                    "while true do end");
  check_budget_stop("pcall in a loop",
                    "while true do pcall(function() while true do end end) "
                    "end");
  check_budget_stop("xpcall handler loops",
                    "while true do\n"
                    "  xpcall(function() while true do end end,\n"
                    "         function() while true do end end)\n"
                    "end");
  check_budget_stop("coroutine made at load", "co()");
  check_budget_stop("fresh coroutines",
                    "while true do\n"
                    "  coroutine.resume(coroutine.create(function()\n"
                    "    while true do end\n"
                    "  end))\n"
                    "end");
  check_budget_stop("caught then returns true",
                    "pcall(function() while true do end end)");
  check_budget_stop("sort comparator", "local t = {}\n"
                                       "for i = 1, 100 do t[i] = i end\n"
                                       "while true do\n"
                                       "  pcall(table.sort, t, function(a, b)\n"
                                       "    while true do end\n"
                                       "  end)\n"
                                       "end");
}

static void test_memory_cap(void) {
  apig_policy *policy = load_limited(
      "local p = {}\n"
      "function p.authorize(api)\n"
      "  if api.name ~= 'bomb' then return true end\n"
      "  local parts = {}\n"
      "  pcall(function()\n"
      "    for i = 1, 1e9 do parts[i] = string.rep('x', 1e5) .. i end\n"
      "  end)\n"
      "  pcall(function()\n"
      "    local s = 'x'\n"
      "    while true do s = s .. s end\n"
      "  end)\n"
      "  return true\n"
      "end\n"
      "return p\n",
      10000000, 8 << 20);
  CHECK(policy != NULL);
  if (!policy)
    return;
  verdict v = authorize(policy, "a1", "bomb");
  CHECK_INT(v.status, APIG_E_SYSTEM);
  CHECK_STR(v.err, "authorize: memory limit of 8388608 bytes exceeded");
  CHECK_INT(apig_policy_get_stats(policy)->memory_overruns, 1);
  check_allows_normally(policy);
  check_allows_normally(policy);
  v = authorize(policy, "a1", "bomb");
  CHECK_INT(v.status, APIG_E_SYSTEM);
  check_allows_normally(policy);
  apig_policy_free(policy);

  const char *err = load_error("return {}\n", 0, 4096);
  CHECK(strstr(err, "memory limit of 4096 bytes exceeded") != NULL);
}

/* ---- results --------------------------------------------------------- */

static const char *const results_policy =
    "local cases = {\n"
    "  nothing = function() end,\n"
    "  ['nil'] = function() return nil end,\n"
    "  ['false'] = function() return false end,\n"
    "  zero = function() return 0 end,\n"
    "  empty = function() return '' end,\n"
    "  false_text = function() return 'false' end,\n"
    "  table = function() return {} end,\n"
    "  func = function() return print end,\n"
    "  one = function() return 1 end,\n"
    "  ['true'] = function() return true end,\n"
    "  true_more = function() return true, 'ignored', 'APIG.1234' end,\n"
    "  deny_code = function() return false, 'not today', 'APIG.1234' end,\n"
    "  deny_long_code = function() return false, 'm', 'APIG.12345' end,\n"
    "  deny_bad_code = function() return false, 'm', 'XAPIG.123' end,\n"
    "  deny_number = function() return nil, 42, 7 end,\n"
    "  deny_bad_utf8 = function() return false, 'bad\\xff' end,\n"
    "  raise = function() error('no') end,\n"
    "  raise_table = function() error({code = 7}) end,\n"
    "  raise_nil = function() error(nil) end,\n"
    "  raise_tostring = function()\n"
    "    error(setmetatable({}, {__tostring = function() error('x') end}))\n"
    "  end,\n"
    "  raise_nested = function() error('helper.lua:3: inner', 2) end,\n"
    "  raise_multiline = function() error('a\\nb', 0) end,\n"
    "  raise_runtime = function() local t = nil; return t.x end,\n"
    "  yield = function() coroutine.yield() end,\n"
    "}\n"
    "local p = {}\n"
    "local function allow() return true end\n"
    "function p.authorize(api) return (cases[api.name] or allow)() end\n"
    "return p\n";

static void check_denied(apig_policy *policy, const char *name) {
  verdict v = authorize(policy, "a1", name);
  fprintf(stderr, "authorize case: %s\n", name);
  CHECK_INT(v.status, APIG_E_OK);
  CHECK_INT(v.allowed, 0);
  CHECK_STR(v.message, "");
  CHECK_STR(v.code, "");
}

static void check_hook_error(apig_policy *policy, const char *name,
                             const char *expected) {
  verdict v = authorize(policy, "a1", name);
  fprintf(stderr, "authorize case: %s\n", name);
  CHECK_INT(v.status, APIG_E_SYSTEM);
  CHECK_INT(v.allowed, 0);
  CHECK_STR(v.err, expected);
  check_clean_error(v.err);
  check_allows_normally(policy);
}

static void test_authorize_results(void) {
  apig_policy *policy = load(results_policy);
  CHECK(policy != NULL);
  if (!policy)
    return;
  static const char *const denials[] = {
      "nothing",    "nil",   "false", "zero", "empty",
      "false_text", "table", "func",  "one",  "deny_number"};
  for (size_t i = 0; i < sizeof denials / sizeof denials[0]; i++)
    check_denied(policy, denials[i]);

  verdict v = authorize(policy, "a1", "true");
  CHECK_INT(v.allowed, 1);
  v = authorize(policy, "a1", "true_more");
  CHECK_INT(v.allowed, 1);
  CHECK_STR(v.message, "");
  CHECK_STR(v.code, "");
  v = authorize(policy, "a1", "deny_code");
  CHECK_INT(v.allowed, 0);
  CHECK_STR(v.message, "not today");
  CHECK_STR(v.code, "APIG.1234");
  v = authorize(policy, "a1", "deny_long_code");
  CHECK_INT(v.allowed, 0);
  CHECK_STR(v.message, "m");
  CHECK_STR(v.code, "");
  v = authorize(policy, "a1", "deny_bad_code");
  CHECK_STR(v.message, "m");
  CHECK_STR(v.code, "");
  v = authorize(policy, "a1", "deny_bad_utf8");
  CHECK_INT(v.allowed, 0);
  CHECK_STR(v.message, "");

  log_text.len = 0;
  check_hook_error(policy, "raise", "authorize: no");
  CHECK(log_contains("WARN [req-1]") != NULL);
  CHECK(log_contains("stack traceback") != NULL);
  check_hook_error(policy, "raise_table",
                   "authorize: error object is a table value");
  check_hook_error(policy, "raise_nil",
                   "authorize: error object is a nil value");
  check_hook_error(policy, "raise_tostring",
                   "authorize: error object is a table value");
  check_hook_error(policy, "raise_nested", "authorize: inner");
  check_hook_error(policy, "raise_multiline", "authorize: a b");
  check_hook_error(policy, "raise_runtime",
                   "authorize: attempt to index a nil value (local 't')");
  check_hook_error(policy, "yield",
                   "authorize: attempt to yield from outside a coroutine");
  CHECK_INT(apig_policy_get_stats(policy)->hook_errors, 8);
  apig_policy_free(policy);
}

static apig_error map_env(apig_policy *policy, const char *env_id,
                          const char *api_name, char **out, char *err) {
  apig_policy_api api = make_api("a1", api_name);
  return apig_policy_map_env(policy, env_id, &api, &test_ctx, out, err, 256);
}

static void test_map_env(void) {
  apig_policy *policy =
      load("local p = {}\n"
           "local cases = {\n"
           "  keep = function() return nil end,\n"
           "  test = function() return 'TEST' end,\n"
           "  default = function(env_id) return env_id or 'DEFAULT' end,\n"
           "  nope = function() return 'nope' end,\n"
           "  empty = function() return '' end,\n"
           "  max = function() return string.rep('e', 64) end,\n"
           "  long = function() return string.rep('e', 65) end,\n"
           "  nul = function() return 'a\\0b' end,\n"
           "  number = function() return 42 end,\n"
           "  boolean = function() return true end,\n"
           "}\n"
           "function p.map_env(env_id, api, ctx)\n"
           "  assert(ctx.request_id == 'req-1')\n"
           "  return cases[api.name](env_id)\n"
           "end\n"
           "return p\n");
  CHECK(policy != NULL);
  if (!policy)
    return;
  CHECK(apig_policy_has_map_env(policy));
  CHECK(!apig_policy_has_authorize(policy));
  CHECK(!apig_policy_has_rewrite_remark(policy));
  char *out = NULL, err[256];
  CHECK_INT(map_env(policy, "RELEASE", "keep", &out, err), APIG_E_OK);
  CHECK(out == NULL);
  CHECK_INT(map_env(policy, "RELEASE", "test", &out, err), APIG_E_OK);
  CHECK_STR(out, "TEST");
  apig_free(out);
  CHECK_INT(map_env(policy, NULL, "default", &out, err), APIG_E_OK);
  CHECK_STR(out, "DEFAULT");
  apig_free(out);
  CHECK_INT(map_env(policy, "nope", "nope", &out, err), APIG_E_OK);
  CHECK_STR(out, "nope");
  apig_free(out);
  CHECK_INT(map_env(policy, NULL, "max", &out, err), APIG_E_OK);
  CHECK_INT(out ? strlen(out) : 0, 64);
  apig_free(out);
  static const char *const bad[] = {"empty", "long", "nul"};
  for (size_t i = 0; i < 3; i++) {
    CHECK_INT(map_env(policy, NULL, bad[i], &out, err), APIG_E_SYSTEM);
    CHECK(out == NULL);
    CHECK_STR(err, "map_env: returned an invalid environment id: expected "
                   "1 to 64 bytes of UTF-8 without NUL");
  }
  CHECK_INT(map_env(policy, NULL, "number", &out, err), APIG_E_SYSTEM);
  CHECK_STR(err, "map_env: returned a number, expected an environment id "
                 "or nil");
  CHECK_INT(map_env(policy, NULL, "boolean", &out, err), APIG_E_SYSTEM);
  CHECK_INT(map_env(policy, "RELEASE", "keep", &out, err), APIG_E_OK);
  CHECK(out == NULL);
  apig_policy_free(policy);
}

/* ctx.envs over a fixed table of (name, id) pairs. */
static const char *const env_table[][2] = {
    {"RELEASE", "DEFAULT_ENVIRONMENT_RELEASE_ID"}, {"TEST", "id-test"},
    {"STAGING", "id-staging"}};

static const char *table_id_by_name(const void *data, const char *name) {
  (void)data;
  for (size_t i = 0; i < 3; i++)
    if (strcmp(env_table[i][0], name) == 0)
      return env_table[i][1];
  return NULL;
}

static int table_env_after(const void *data, const char *name,
                           const char **next_name, const char **next_id) {
  size_t i = 0;
  (void)data;
  if (name) {
    while (i < 3 && strcmp(env_table[i][0], name) != 0)
      i++;
    i++;
  }
  if (i >= 3)
    return 0;
  *next_name = env_table[i][0];
  *next_id = env_table[i][1];
  return 1;
}

static void test_ctx_envs(void) {
  apig_policy *policy =
      load("local p = {}\n"
           "local kept\n"
           "function p.map_env(env_id, api, ctx)\n"
           "  if api.name == 'walk' then\n"
           "    local names = {}\n"
           "    for name, id in pairs(ctx.envs) do\n"
           "      assert(ctx.envs[name] == id)\n"
           "      names[#names + 1] = name\n"
           "    end\n"
           "    return table.concat(names, ',')\n"
           "  elseif api.name == 'write' then\n"
           "    ctx.envs.TEST = 'x'\n"
           "  elseif api.name == 'keep' then\n"
           "    kept = ctx.envs\n"
           "    return ctx.envs[env_id]\n"
           "  elseif api.name == 'stale' then\n"
           "    return tostring(kept.TEST)\n"
           "  elseif api.name == 'odd' then\n"
           "    return tostring(ctx.envs[1]) .. tostring(ctx.envs['TE\\0'])\n"
           "  end\n"
           "  return ctx.envs[env_id]\n"
           "end\n"
           "return p\n");
  CHECK(policy != NULL);
  if (!policy)
    return;
  apig_policy_envs envs = {NULL, table_id_by_name, table_env_after};
  apig_policy_ctx ctx = test_ctx;
  ctx.envs = &envs;
  apig_policy_api api = make_api("a1", "lookup");
  char *out = NULL, err[256];
  CHECK_INT(apig_policy_map_env(policy, "TEST", &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_OK);
  CHECK_STR(out, "id-test");
  apig_free(out);
  CHECK_INT(apig_policy_map_env(policy, "PROD", &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_OK);
  CHECK(out == NULL);
  api.name = "walk";
  CHECK_INT(apig_policy_map_env(policy, NULL, &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_OK);
  CHECK_STR(out, "RELEASE,TEST,STAGING");
  apig_free(out);
  api.name = "write";
  CHECK_INT(apig_policy_map_env(policy, NULL, &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_SYSTEM);
  CHECK_STR(err, "map_env: attempt to modify a read-only view");
  api.name = "odd";
  CHECK_INT(apig_policy_map_env(policy, NULL, &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_OK);
  CHECK_STR(out, "nilnil");
  apig_free(out);
  /* A view kept from an earlier call shows the running call's data. */
  api.name = "keep";
  CHECK_INT(apig_policy_map_env(policy, "TEST", &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_OK);
  apig_free(out);
  api.name = "stale";
  CHECK_INT(apig_policy_map_env(policy, NULL, &api, &ctx, &out, err,
                                sizeof err),
            APIG_E_OK);
  CHECK_STR(out, "id-test");
  apig_free(out);
  /* Without environments, ctx.envs is an empty table. */
  api.name = "walk";
  CHECK_INT(apig_policy_map_env(policy, NULL, &api, &test_ctx, &out, err,
                                sizeof err),
            APIG_E_SYSTEM);
  CHECK_STR(err, "map_env: returned an invalid environment id: expected "
                 "1 to 64 bytes of UTF-8 without NUL");
  apig_policy_free(policy);
}

static apig_error rewrite(apig_policy *policy, const char *remark,
                          const char *api_name, char **out, char *err) {
  apig_policy_api api = make_api("a1", api_name);
  return apig_policy_rewrite_remark(policy, remark, &api, &test_env, &test_ctx,
                                    out, err, 256);
}

static void test_rewrite_remark(void) {
  apig_policy *policy = load_limited(
      "local p = {}\n"
      "local cases = {\n"
      "  tag = function(r, env) return '[' .. env.id .. '] ' .. r end,\n"
      "  echo = function(r) return tostring(r) end,\n"
      "  number = function() return 42 end,\n"
      "  nul = function() return 'ok\\0tail' end,\n"
      "  huge = function() return string.rep('x', 10 * 1024 * 1024) end,\n"
      "  bad_utf8 = function() return '\\xC3\\x28' end,\n"
      "  table = function() return {} end,\n"
      "  nothing = function() end,\n"
      "  max = function() return string.rep('\\u{e9}', 255) end,\n"
      "  over = function() return string.rep('\\u{e9}', 256) end,\n"
      "}\n"
      "function p.rewrite_remark(remark, api, env, ctx)\n"
      "  return cases[api.name](remark, env)\n"
      "end\n"
      "return p\n",
      200000, 64 << 20);
  CHECK(policy != NULL);
  if (!policy)
    return;
  char *out = NULL, err[256];
  CHECK_INT(rewrite(policy, "hello", "tag", &out, err), APIG_E_OK);
  CHECK_STR(out, "[RELEASE] hello");
  apig_free(out);
  CHECK_INT(rewrite(policy, NULL, "echo", &out, err), APIG_E_OK);
  CHECK_STR(out, "nil");
  apig_free(out);
  CHECK_INT(rewrite(policy, "r", "max", &out, err), APIG_E_OK);
  CHECK_INT(out ? strlen(out) : 0, 510);
  apig_free(out);
  static const struct {
    const char *name, *err;
  } bad[] = {
      {"number", "rewrite_remark: returned number, expected a string"},
      {"nul", "rewrite_remark: returned a remark that is not valid UTF-8 "
              "or holds NUL"},
      {"huge", "rewrite_remark: returned a remark of 10485760 characters, "
               "the maximum is 255"},
      {"bad_utf8", "rewrite_remark: returned a remark that is not valid "
                   "UTF-8 or holds NUL"},
      {"table", "rewrite_remark: returned table, expected a string"},
      {"nothing", "rewrite_remark: returned nothing, expected a string"},
      {"over", "rewrite_remark: returned a remark of 256 characters, the "
               "maximum is 255"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_INT(rewrite(policy, "r", bad[i].name, &out, err), APIG_E_SYSTEM);
    CHECK(out == NULL);
    CHECK_STR(err, bad[i].err);
  }
  CHECK_INT(rewrite(policy, "again", "tag", &out, err), APIG_E_OK);
  CHECK_STR(out, "[RELEASE] again");
  apig_free(out);
  apig_policy_free(policy);
}

/* ---- require --------------------------------------------------------- */

static void test_require(void) {
  char helpers[128], path[256], sub[192];
  snprintf(helpers, sizeof helpers, "%s/helpers", folder);
  mkdir(helpers, 0700);
  snprintf(sub, sizeof sub, "%s/sub", folder);
  mkdir(sub, 0700);
  snprintf(path, sizeof path, "%s/util.lua", helpers);
  const char *util = "loads = (loads or 0) + 1\n"
                     "return {double = function(x) return 2 * x end,\n"
                     "        has_io = io ~= nil}\n";
  write_file(path, util, strlen(util));
  snprintf(path, sizeof path, "%s/mod.lua", sub);
  write_file(path, "return 'sub'\n", 13);
  snprintf(path, sizeof path, "%s/near.lua", folder);
  write_file(path, "return 'near'\n", 14);
  snprintf(path, sizeof path, "%s/loop.lua", folder);
  write_file(path, "return require('loop')\n", 23);

  char src[2048];
  snprintf(src, sizeof src,
           "local util = require('util')\n"
           "assert(require('util') == util)\n"
           "assert(util.double(4) == 8 and not util.has_io)\n"
           "assert(loads == 1)\n"
           "assert(require('near') == 'near')\n"
           "assert(require('sub.mod') == 'sub')\n"
           "local function rejected(name)\n"
           "  local ok, e = pcall(require, name)\n"
           "  return not ok and e:find('invalid module name', 1, true)\n"
           "end\n"
           "for _, name in ipairs({'../helpers/util', '/etc/passwd',\n"
           "    'a..b', '.util', 'util.', 'sub/mod', 'a b', '', 'x\\0y'}) do\n"
           "  assert(rejected(name), name)\n"
           "end\n"
           "assert(not pcall(require, 'loop'))\n"
           "local ok, e = pcall(require, 'missing')\n"
           "assert(not ok and e:find(\"module 'missing' not found\"))\n"
           "return {authorize = function() return util.double(1) == 2 end}\n");
  char *errmsg = NULL;
  apig_policy_limits limits = {0, 0};
  apig_policy *policy =
      apig_policy_load(write_policy(src), helpers, &limits, &logger, &errmsg);
  CHECK_STR(errmsg ? errmsg : "", "");
  apig_free(errmsg);
  CHECK(policy != NULL);
  if (policy)
    check_allows_normally(policy);
  apig_policy_free(policy);

  /* Without a helpers folder, util is out of reach. */
  policy = apig_policy_load(write_policy("return {authorize = function()\n"
                                         "  return pcall(require, 'util')\n"
                                         "end}\n"),
                            NULL, &limits, &logger, &errmsg);
  CHECK(policy != NULL);
  if (policy) {
    verdict v = authorize(policy, "a1", "one");
    CHECK_INT(v.allowed, 0);
  }
  apig_policy_free(policy);

  /* A helper holding bytecode is not loaded. */
  lua_State *L = luaL_newstate();
  apig_buf code;
  apig_buf_init(&code);
  luaL_loadstring(L, "return 1");
  lua_dump(L, write_chunk, &code, 0);
  lua_close(L);
  snprintf(path, sizeof path, "%s/binary.lua", helpers);
  write_file(path, code.data, code.len);
  apig_buf_free(&code);
  policy = apig_policy_load(
      write_policy("return {authorize = function()\n"
                   "  local ok, e = pcall(require, 'binary')\n"
                   "  return not ok and e:find('binary chunk') ~= nil\n"
                   "end}\n"),
      helpers, &limits, &logger, &errmsg);
  CHECK(policy != NULL);
  if (policy)
    check_allows_normally(policy);
  apig_policy_free(policy);
}

/* ---- loading and logging --------------------------------------------- */

static void test_load_errors(void) {
  const char *err = load_error("local p = {}\n"
                               "function p.authorize( return p\n",
                               0, 0);
  CHECK(strstr(err, folder) == err);
  CHECK(strstr(err, ".lua:2: ") != NULL);

  err = load_error("return 5\n", 0, 0);
  CHECK(strstr(err, "the policy must return a table, got number") != NULL);

  err = load_error("return {authorize = 5}\n", 0, 0);
  CHECK(strstr(err, ": policy.authorize must be a function, got number") !=
        NULL);

  err = load_error("\nerror('boom')\n", 0, 0);
  CHECK(strstr(err, ".lua:2: boom") != NULL);

  err = load_error("error({})\n", 0, 0);
  CHECK(strstr(err, ": error object is a table value") != NULL);

  err = load_error("while true do end\n", 50000, 0);
  CHECK(strstr(err, "instruction budget of 50000 exceeded") != NULL);

  err = load_error("pcall(function() while true do end end)\nreturn {}\n",
                   50000, 0);
  CHECK(strstr(err, "instruction budget of 50000 exceeded") != NULL);

  err = load_error("return setmetatable({}, {__index = function()\n"
                   "  error('no hooks here')\n"
                   "end})\n",
                   0, 0);
  CHECK(strstr(err, "no hooks here") != NULL);

  char *errmsg = NULL;
  char missing[128];
  snprintf(missing, sizeof missing, "%s/missing.lua", folder);
  CHECK(apig_policy_load(missing, NULL, NULL, &logger, &errmsg) == NULL);
  CHECK(errmsg != NULL);
  CHECK(strstr(errmsg ? errmsg : "", "missing.lua") != NULL);
  apig_free(errmsg);

  CHECK_STR(load_error("return {}\n", 0, 0), "");
}

static void test_log_function(void) {
  apig_policy *policy = load("local p = {}\n"
                             "function p.authorize(api)\n"
                             "  log.info('checking', api.id, 7, '\\nforged')\n"
                             "  print('printed')\n"
                             "  log.warn('careful')\n"
                             "  if api.name == 'flood' then\n"
                             "    for i = 1, 1000 do log.debug(i) end\n"
                             "  end\n"
                             "  return true\n"
                             "end\n"
                             "return p\n");
  CHECK(policy != NULL);
  if (!policy)
    return;
  log_text.len = 0;
  authorize(policy, "a1", "one");
  CHECK(log_contains("INFO [req-1] policy ") != NULL);
  CHECK(log_contains(".lua:3: checking a1 7  forged") != NULL);
  CHECK(log_contains(".lua:4: printed") != NULL);
  CHECK(log_contains("WARN [req-1] policy ") != NULL);
  log_text.len = 0;
  authorize(policy, "a1", "flood");
  CHECK(log_contains(".lua:7: 97") != NULL);
  CHECK(log_contains(".lua:7: 98\n") == NULL);
  CHECK(log_contains("903 lines dropped") != NULL);
  apig_policy_free(policy);
}

static void test_missing_hooks(void) {
  apig_policy *policy = load("return {}\n");
  CHECK(policy != NULL);
  if (!policy)
    return;
  verdict v = authorize(policy, "a1", "one");
  CHECK_INT(v.allowed, 1);
  char *out = NULL, err[256];
  CHECK_INT(map_env(policy, "RELEASE", "x", &out, err), APIG_E_OK);
  CHECK(out == NULL);
  CHECK_INT(rewrite(policy, "keep", "x", &out, err), APIG_E_OK);
  CHECK_STR(out, "keep");
  apig_free(out);
  CHECK_INT(apig_policy_get_stats(policy)->hook_calls, 0);
  apig_policy_free(policy);
  apig_policy_free(NULL);
}

/* Prints the cost of one call to a trivial authorize hook. */
static void measure_call_cost(void) {
  apig_policy *policy = load("return {authorize = function() return true "
                             "end}\n");
  if (!policy)
    return;
  enum { CALLS = 100000 };
  struct timespec start, end;
  int allowed_count = 0;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < CALLS; i++)
    allowed_count += authorize(policy, "a1", "one").allowed;
  clock_gettime(CLOCK_MONOTONIC, &end);
  double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 +
              (double)(end.tv_nsec - start.tv_nsec);
  CHECK_INT(allowed_count, CALLS);
  printf("authorize, trivial hook: %.3f us per call over %d calls\n",
         ns / CALLS / 1000.0, CALLS);
  apig_policy_free(policy);
}

static void remove_folder(void) {
  char command[128];
  snprintf(command, sizeof command, "rm -rf '%s'", folder);
  if (system(command) != 0)
    fprintf(stderr, "could not remove %s\n", folder);
}

int main(void) {
  /* A hook that escapes its budget hangs; fail instead of waiting. */
  alarm(120);
  snprintf(folder, sizeof folder, "/tmp/apig-policy-XXXXXX");
  if (!mkdtemp(folder)) {
    perror("mkdtemp");
    return 2;
  }
  apig_buf_init(&log_text);
  test_views();
  test_sandbox_escapes();
  test_sandbox_keeps_basics();
  test_budget();
  test_memory_cap();
  test_authorize_results();
  test_map_env();
  test_ctx_envs();
  test_rewrite_remark();
  test_require();
  test_load_errors();
  test_log_function();
  test_missing_hooks();
  measure_call_cost();
  apig_buf_free(&log_text);
  remove_folder();
  return test_report("test_policy");
}
