-- The hook contract over HTTP: what map_env, authorize and rewrite_remark
-- may return, and how each outcome shows in the batch answer.
local t = require "apig_test"
local fx = require "apig_policy_fixture"

local RELEASE = t.RELEASE

local VERDICTS = [[
local p = {}
local verdicts = {
  allow_true = function() return true end,
  allow_more = function() return true, "extra", "APIG.3104" end,
  deny_nothing = function() end,
  deny_nil = function() return nil end,
  deny_false = function() return false end,
  deny_zero = function() return 0 end,
  deny_empty = function() return "" end,
  deny_word = function() return "false" end,
  deny_table = function() return {} end,
  deny_function = function() return print end,
  deny_one = function() return 1 end,
  deny_message = function(api, env) return false, "not in " .. env.name end,
  deny_code = function() return false, "over quota", "APIG.3104" end,
  deny_badcode = function() return false, "odd code", "APIG.12" end,
  raise_string = function() error("no") end,
  raise_table = function() error({ code = 7 }) end,
  raise_nil = function() error(nil) end,
  raise_tostring = function()
    error(setmetatable({}, { __tostring = function() error("inner") end }))
  end,
  yield = function() coroutine.yield() end,
  loop = function() while true do end end,
}
function p.authorize(api, env, ctx)
  local verdict = verdicts[api.name]
  if verdict then return verdict(api, env, ctx) end
  return true
end
local remarks = {
  rw_tag = function(r, api, env, ctx) return "[" .. ctx.caller .. "] " .. r end,
  rw_ctx = function(r, api, env, ctx)
    return table.concat({ ctx.action, ctx.project_id, ctx.instance_id,
      ctx.request_id, ctx.batch_size, ctx.time, api.group_name, env.name,
      ctx.remark }, "|")
  end,
  rw_number = function() return 42 end,
  rw_nul = function() return "ok\0tail" end,
  rw_huge = function() return ("x"):rep(10 * 1024 * 1024) end,
  rw_badutf8 = function() return "\xC3\x28" end,
  rw_table = function() return {} end,
  rw_nothing = function() end,
  rw_long = function() return ("é"):rep(256) end,
  rw_max = function() return ("é"):rep(255) end,
}
function p.rewrite_remark(remark, api, env, ctx)
  local rewrite = remarks[api.name]
  if rewrite then return rewrite(remark, api, env, ctx) end
  return remark
end
return p
]]

local MAP_ENV = [[
local p = {}
function p.map_env(env_id, api, ctx)
  local n = api.name
  if n == "me_test" then return ctx.envs.TEST end
  if n == "me_missing" then return "no-such-env" end
  if n == "me_number" then return 42 end
  if n == "me_raise" then error("boom") end
  return nil
end
return p
]]

describe("authorize", function()
  local server, ids
  local names = { "allow_true", "allow_more", "deny_nothing", "deny_nil",
    "deny_false", "deny_zero", "deny_empty", "deny_word", "deny_table",
    "deny_function", "deny_one", "deny_message", "deny_code",
    "deny_badcode", "raise_string", "raise_table", "raise_nil",
    "raise_tostring", "yield", "loop", "plain_api" }

  setup(function()
    server = fx.start(VERDICTS)
    ids = fx.create_apis(server, "verdicts", names)
  end)
  teardown(function() server:stop() end)

  local function batch_of(list)
    local apis = {}
    for i, name in ipairs(list) do apis[i] = ids[name] end
    local status, body = server:batch("online",
      { apis = apis, env_id = RELEASE, remark = "r" })
    assert.equal(200, status)
    return body
  end

  it("allows only true", function()
    local body = batch_of(names)
    assert.same({ ids.allow_true, ids.allow_more, ids.plain_api },
      fx.ids(body.success))
    local failed = fx.by_id(body.failure)
    for _, name in ipairs({ "deny_nothing", "deny_nil", "deny_false",
        "deny_zero", "deny_empty", "deny_word", "deny_table",
        "deny_function", "deny_one" }) do
      assert.equal("APIG.1005", failed[ids[name]].error_code, name)
      assert.equal(name, failed[ids[name]].api_name)
    end
  end)

  it("keeps failures in request order", function()
    local body = batch_of(names)
    local expected = {}
    for _, name in ipairs(names) do
      if name ~= "allow_true" and name ~= "allow_more" and
          name ~= "plain_api" then
        expected[#expected + 1] = ids[name]
      end
    end
    assert.same(expected, fx.ids(body.failure))
  end)

  it("passes the denial message and a valid own code", function()
    local failed = fx.by_id(batch_of({ "deny_message", "deny_code",
      "deny_badcode", "deny_false" }).failure)
    assert.equal("APIG.1005", failed[ids.deny_message].error_code)
    assert.equal("not in RELEASE", failed[ids.deny_message].error_msg)
    assert.equal("APIG.3104", failed[ids.deny_code].error_code)
    assert.equal("over quota", failed[ids.deny_code].error_msg)
    assert.equal("APIG.1005", failed[ids.deny_badcode].error_code)
    assert.equal("odd code", failed[ids.deny_badcode].error_msg)
    assert.equal("No permissions to request this method",
      failed[ids.deny_false].error_msg)
  end)

  it("turns raised errors into one-line APIG.9999 items", function()
    local cases = {
      raise_string = "authorize: no",
      raise_table = "authorize: error object is a table value",
      raise_nil = "authorize: error object is a nil value",
      raise_tostring = "authorize: error object is a table value",
    }
    local list = { "raise_string", "allow_true", "raise_table",
      "raise_nil", "raise_tostring", "yield", "loop", "plain_api" }
    local body = batch_of(list)
    assert.same({ ids.allow_true, ids.plain_api }, fx.ids(body.success))
    local failed = fx.by_id(body.failure)
    for name, message in pairs(cases) do
      assert.equal("APIG.9999", failed[ids[name]].error_code, name)
      assert.equal(message, failed[ids[name]].error_msg, name)
    end
    for _, name in ipairs({ "raise_string", "raise_table", "raise_nil",
        "raise_tostring", "yield", "loop" }) do
      assert.equal("APIG.9999", failed[ids[name]].error_code, name)
      fx.assert_clean_hook_error(failed[ids[name]].error_msg, "authorize")
    end
    assert.equal("authorize: instruction budget of 1000000 exceeded",
      failed[ids.loop].error_msg)
  end)

  it("logs the traceback the answer leaves out", function()
    batch_of({ "raise_string" })
    local log = server:log()
    assert.truthy(log:find("authorize failed for API " .. ids.raise_string,
      1, true))
    assert.truthy(log:find("traceback", 1, true))
  end)

  it("serves the next request after hook errors", function()
    batch_of({ "loop", "raise_tostring", "yield" })
    local body = batch_of({ "allow_true", "plain_api" })
    assert.equal(2, #body.success)
    assert.equal(0, #body.failure)
  end)
end)

describe("rewrite_remark", function()
  local server, ids
  local names = { "rw_tag", "rw_ctx", "rw_number", "rw_nul", "rw_huge",
    "rw_badutf8", "rw_table", "rw_nothing", "rw_long", "rw_max",
    "plain_api" }

  setup(function()
    server = fx.start(VERDICTS)
    ids = fx.create_apis(server, "remarks", names)
  end)
  teardown(function() server:stop() end)

  local function publish(list, remark, headers)
    local apis = {}
    for i, name in ipairs(list) do apis[i] = ids[name] end
    local status, body, h = server:batch("online",
      { apis = apis, env_id = RELEASE, remark = remark }, headers)
    assert.equal(200, status)
    return body, h
  end

  it("stores the returned remark", function()
    local body = publish({ "rw_tag", "plain_api", "rw_max" }, "hello")
    local ok = fx.by_id(body.success)
    assert.equal("[developer] hello", ok[ids.rw_tag].remark)
    assert.equal("hello", ok[ids.plain_api].remark)
    assert.equal(("é"):rep(255), ok[ids.rw_max].remark)
    local versions = fx.versions(server, ids.rw_tag, RELEASE)
    assert.equal("[developer] hello", versions[1].remark)
  end)

  it("fails bad remarks alone and stores nothing", function()
    local bad = { "rw_number", "rw_nul", "rw_huge", "rw_badutf8",
      "rw_table", "rw_nothing", "rw_long" }
    local list = { "plain_api" }
    for _, name in ipairs(bad) do list[#list + 1] = name end
    local body = publish(list, "x")
    assert.same({ ids.plain_api }, fx.ids(body.success))
    local failed = fx.by_id(body.failure)
    for _, name in ipairs(bad) do
      assert.equal("APIG.9999", failed[ids[name]].error_code, name)
      fx.assert_clean_hook_error(failed[ids[name]].error_msg,
        "rewrite_remark")
      local _, total = fx.versions(server, ids[name], RELEASE)
      assert.equal(0, total, name)
    end
    assert.equal("rewrite_remark: returned number, expected a string",
      failed[ids.rw_number].error_msg)
    assert.equal("rewrite_remark: returned a remark of 256 characters, " ..
      "the maximum is 255", failed[ids.rw_long].error_msg)
  end)

  it("sees the request in ctx", function()
    local before = os.time()
    local body, headers = publish({ "rw_ctx", "plain_api", "rw_ctx" },
      "asked")
    local remark = fx.by_id(body.success)[ids.rw_ctx].remark
    local fields = {}
    for field in (remark .. "|"):gmatch("([^|]*)|") do
      fields[#fields + 1] = field
    end
    assert.equal("online", fields[1])
    assert.equal("p1", fields[2])
    assert.equal("i1", fields[3])
    assert.equal(headers["x-request-id"], fields[4])
    assert.equal("2", fields[5])
    assert.is_true(math.abs(tonumber(fields[6]) - before) <= 5)
    assert.equal("remarks", fields[7])
    assert.equal("RELEASE", fields[8])
    assert.equal("asked", fields[9])
  end)

  it("names the AK as caller in development mode", function()
    local body = publish({ "rw_tag" }, "signed", {
      ["Authorization"] = "SDK-HMAC-SHA256 Access=AKDEVELOPER01, " ..
        "SignedHeaders=x-sdk-date, Signature=" .. ("0"):rep(64),
      ["X-Sdk-Date"] = os.date("!%Y%m%dT%H%M%SZ"),
    })
    assert.equal("[AKDEVELOPER01] signed", body.success[1].remark)
  end)
end)

describe("ctx.caller with credentials", function()
  local server, api

  setup(function()
    local dir = t.tmpdir()
    t.write_file(dir .. "/credentials.json", t.json.encode({
      tokens = { { name = "alice", token = "tok-alice", project_id = "p1",
                   permissions = { "read", "publish", "offline",
                                   "manage" } } },
    }))
    server = fx.start([[
      return { rewrite_remark = function(r, api, env, ctx)
        return ctx.caller .. ": " .. r
      end }]], { args = { "--credentials", dir .. "/credentials.json" } })
    local headers = { ["X-Auth-Token"] = "tok-alice" }
    local _, group = server:json("POST", server.base .. "/api-groups",
      { name = "callers" }, headers)
    local _, created = server:json("POST", server.base .. "/apis", {
      group_id = group.id, name = "who", type = 1, req_protocol = "HTTPS",
      req_method = "GET", req_uri = "/who", auth_type = "NONE",
      backend_type = "MOCK", mock_info = { result_content = "ok" } },
      headers)
    api = created.id
  end)
  teardown(function() server:stop() end)

  it("is the token's name", function()
    local status, body = server:batch("online",
      { apis = { api }, env_id = RELEASE, remark = "ship" },
      { ["X-Auth-Token"] = "tok-alice" })
    assert.equal(200, status)
    assert.equal("alice: ship", body.success[1].remark)
  end)
end)

describe("map_env", function()
  local server, ids, test_env

  setup(function()
    server = fx.start(MAP_ENV)
    test_env = server:create_env("TEST")
    ids = fx.create_apis(server, "mapped", { "me_keep", "me_test",
      "me_missing", "me_number", "me_raise" })
  end)
  teardown(function() server:stop() end)

  local function publish(body)
    local status, answer = server:batch("online", body)
    assert.equal(200, status)
    return fx.by_id(answer.success), fx.by_id(answer.failure), answer
  end

  it("keeps env_id on nil and uses a returned id", function()
    local ok, failed = publish({ apis = { ids.me_keep, ids.me_test,
      ids.me_missing, ids.me_number, ids.me_raise }, env_id = RELEASE })
    assert.equal(RELEASE, ok[ids.me_keep].env_id)
    assert.equal(test_env, ok[ids.me_test].env_id)
    assert.equal("APIG.3003", failed[ids.me_missing].error_code)
    assert.equal("Environment no-such-env does not exist",
      failed[ids.me_missing].error_msg)
    assert.equal("APIG.9999", failed[ids.me_number].error_code)
    assert.equal("map_env: returned a number, expected an environment " ..
      "id or nil", failed[ids.me_number].error_msg)
    assert.equal("map_env: boom", failed[ids.me_raise].error_msg)
  end)

  it("fails nil without env_id per API naming env_id", function()
    local ok, failed, answer = publish({ apis = { ids.me_keep,
      ids.me_test } })
    assert.equal(test_env, ok[ids.me_test].env_id)
    assert.equal("APIG.2001", failed[ids.me_keep].error_code)
    assert.truthy(failed[ids.me_keep].error_msg:find(
      "parameterName:env_id", 1, true))
    assert.same({ ids.me_test }, fx.ids(answer.success))
  end)

  it("checks an unknown env_id per API", function()
    local ok, failed = publish({ apis = { ids.me_keep, ids.me_test },
      env_id = "unknown-env" })
    assert.equal(test_env, ok[ids.me_test].env_id)
    assert.equal("APIG.3003", failed[ids.me_keep].error_code)
    assert.equal("Environment unknown-env does not exist",
      failed[ids.me_keep].error_msg)
  end)

  it("still rejects an unknown group for the whole request", function()
    local status, body = server:batch("online",
      { group_id = "no-such-group" })
    assert.equal(404, status)
    assert.equal("APIG.3001", body.error_code)
  end)
end)

describe("a policy without map_env", function()
  local server, api

  setup(function()
    server = fx.start(VERDICTS)
    api = fx.create_apis(server, "plain", { "plain_api" }).plain_api
  end)
  teardown(function() server:stop() end)

  it("still needs env_id for the whole request", function()
    local status, body = server:batch("online", { apis = { api } })
    assert.equal(400, status)
    assert.equal("APIG.2001", body.error_code)
    assert.truthy(body.error_msg:find("parameterName:env_id", 1, true))
    status, body = server:batch("online", { apis = { api },
      env_id = "unknown-env" })
    assert.equal(404, status)
    assert.equal("APIG.3003", body.error_code)
  end)
end)

describe("policy limits", function()
  local server, ids

  setup(function()
    server = fx.start([[
      local p = {}
      function p.authorize(api)
        if api.name == "spin" then while true do end end
        if api.name == "hog" then
          local parts = {}
          for i = 1, 64 do parts[i] = ("x"):rep(1024 * 1024) .. i end
        end
        return true
      end
      return p]], { args = { "--policy-budget", "50000",
                             "--policy-memory", "8000000" } })
    ids = fx.create_apis(server, "limits", { "spin", "hog", "fine" })
  end)
  teardown(function() server:stop() end)

  it("fails only the API over budget or memory", function()
    local status, body = server:batch("online", { apis = { ids.spin,
      ids.fine, ids.hog }, env_id = RELEASE })
    assert.equal(200, status)
    assert.same({ ids.fine }, fx.ids(body.success))
    local failed = fx.by_id(body.failure)
    assert.equal("APIG.9999", failed[ids.spin].error_code)
    assert.equal("authorize: instruction budget of 50000 exceeded",
      failed[ids.spin].error_msg)
    assert.equal("APIG.9999", failed[ids.hog].error_code)
    assert.equal("authorize: memory limit of 8000000 bytes exceeded",
      failed[ids.hog].error_msg)
  end)

  it("serves the next request normally", function()
    server:batch("online", { apis = { ids.spin, ids.hog },
      env_id = RELEASE })
    local status, body = server:batch("online", { apis = { ids.fine },
      env_id = RELEASE, remark = "after" })
    assert.equal(200, status)
    assert.equal(1, #body.success)
    assert.equal("after", body.success[1].remark)
    status = server:request("GET", "/healthz")
    assert.equal(200, status)
  end)
end)
