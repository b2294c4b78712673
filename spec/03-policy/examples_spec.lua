-- The example policies in examples/policies, each against a real server.
local t = require "apig_test"
local fx = require "apig_policy_fixture"

local RELEASE = t.RELEASE
local EXAMPLES = t.source_dir .. "/examples/policies/"

local function example(name)
  return assert(t.read_file(EXAMPLES .. name), "missing example " .. name)
end

-- Returns the example with its FREEZE window replaced by window_source.
local function freeze_variant(window_source)
  local source, count = example("change_freeze.lua"):gsub(
    "local FREEZE = window%.weekly %b{}",
    function() return "local FREEZE = " .. window_source end)
  assert(count == 1, "the FREEZE setting of change_freeze.lua moved")
  return source
end

local function start_example(name, args)
  local all = { "--policy", EXAMPLES .. name }
  for _, arg in ipairs(args or {}) do all[#all + 1] = arg end
  return t.start { args = all }
end

-- Is now inside Friday 16:00 to Monday 06:00 UTC?
local function in_weekend_freeze(now)
  local d = os.date("!*t", now)
  local minute = d.hour * 60 + d.min
  return (d.wday == 6 and minute >= 16 * 60) or d.wday == 7 or
    d.wday == 1 or (d.wday == 2 and minute < 6 * 60)
end

describe("change_freeze.lua", function()
  it("denies RELEASE in the window without a ticket", function()
    local server = fx.start(freeze_variant(
      'window.daily { from = "00:00", to = "24:00" }'))
    local test_env = server:create_env("TEST")
    local ids = fx.create_apis(server, "frozen", { "one", "two" })
    local status, body = server:batch("online", { apis = { ids.one,
      ids.two }, env_id = RELEASE, remark = "quick fix" })
    assert.equal(200, status)
    assert.equal(2, #body.failure)
    assert.equal("APIG.1005", body.failure[1].error_code)
    assert.equal("RELEASE is frozen from 00:00 to 24:00 UTC: put a change " ..
      "ticket id such as CHG-1234 in the remark", body.failure[1].error_msg)

    status, body = server:batch("online", { apis = { ids.one },
      env_id = RELEASE, remark = "CHG-1234 quick fix" })
    assert.equal(1, #body.success)
    status, body = server:batch("online", { apis = { ids.one },
      env_id = RELEASE, remark = "XCHG-12 or CHG-x" })
    assert.equal(1, #body.failure)
    status, body = server:batch("online", { apis = { ids.two },
      env_id = test_env, remark = "no ticket" })
    assert.equal(1, #body.success)
    status, body = server:batch("offline", { apis = { ids.one },
      env_id = RELEASE })
    assert.equal(1, #body.success)
    server:stop()
  end)

  it("allows everything outside the window", function()
    local server = fx.start(freeze_variant(
      'window.dates { from = "2000-01-01", to = "2000-01-02" }'))
    local ids = fx.create_apis(server, "thawed", { "one" })
    local status, body = server:batch("online", { apis = { ids.one },
      env_id = RELEASE })
    assert.equal(200, status)
    assert.equal(1, #body.success)
    server:stop()
  end)

  it("follows the weekend window as shipped", function()
    local server = start_example("change_freeze.lua")
    local ids = fx.create_apis(server, "shipped", { "one" })
    local before = os.time()
    local _, body = server:batch("online", { apis = { ids.one },
      env_id = RELEASE })
    if in_weekend_freeze(before) == in_weekend_freeze(os.time()) then
      assert.equal(in_weekend_freeze(before) and 1 or 0, #body.failure)
    end
    server:stop()
  end)
end)

describe("remark_rewriter.lua", function()
  local server, ids
  setup(function()
    server = start_example("remark_rewriter.lua")
    ids = fx.create_apis(server, "remarks", { "one" })
  end)
  teardown(function() server:stop() end)

  local function remark_for(remark)
    local _, body = server:batch("online", { apis = { ids.one },
      env_id = RELEASE, remark = remark })
    return body.success[1].remark
  end

  it("prefixes the caller and the ticket", function()
    assert.equal("[developer CHG-1234] CHG-1234 fix login",
      remark_for("CHG-1234 fix login"))
    assert.equal("[developer] hotfix", remark_for("hotfix"))
    assert.equal("[developer]", remark_for(""))
  end)

  it("keeps at most 255 characters", function()
    local long = "CHG-7 " .. ("é"):rep(249)
    local stored = remark_for(long)
    assert.equal(255, utf8.len(stored))
    assert.equal("[developer CHG-7] CHG-7 ", stored:sub(1, 24))
  end)
end)

describe("env_aliases.lua", function()
  local server, ids, test_env
  setup(function()
    server = start_example("env_aliases.lua")
    test_env = server:create_env("TEST")
    ids = fx.create_apis(server, "aliases", { "one" })
  end)
  teardown(function() server:stop() end)

  local function env_for(body)
    body.apis = { ids.one }
    local status, answer = server:batch("online", body)
    assert.equal(200, status)
    return answer.success[1] and answer.success[1].env_id, answer.failure[1]
  end

  it("maps aliases and names to ids", function()
    assert.equal(RELEASE, env_for({ env_id = "prod" }))
    assert.equal(test_env, env_for({ env_id = "test" }))
    assert.equal(test_env, env_for({ env_id = "TEST" }))
    assert.equal(test_env, env_for({}))
    assert.equal(RELEASE, env_for({ env_id = RELEASE }))
    assert.equal(test_env, env_for({ env_id = test_env }))
  end)

  it("fails an unknown env_id per API", function()
    local env, failure = env_for({ env_id = "nope" })
    assert.is_nil(env)
    assert.equal("APIG.3003", failure.error_code)
    assert.equal("Environment nope does not exist", failure.error_msg)
  end)
end)

describe("env_aliases.lua without TEST", function()
  it("names the missing environment", function()
    local server = start_example("env_aliases.lua")
    local ids = fx.create_apis(server, "aliases", { "one" })
    local _, body = server:batch("online", { apis = { ids.one } })
    assert.equal("APIG.3003", body.failure[1].error_code)
    assert.equal("Environment TEST does not exist", body.failure[1].error_msg)
    server:stop()
  end)
end)

describe("group_routing.lua", function()
  local server, test_env, pay, internal, admin, other
  setup(function()
    server = start_example("group_routing.lua")
    test_env = server:create_env("TEST")
    pay = fx.create_apis(server, "payments", { "charge" })
    internal = fx.create_apis(server, "internal-tools", { "reindex" })
    local group = server:create_group("backoffice")
    admin = server:create_api(group, "wipe", "/admin/wipe", "POST")
    other = server:create_api(group, "status", "/status", "GET")
  end)
  teardown(function() server:stop() end)

  it("routes a batch without env_id by group", function()
    local status, body = server:batch("online", { apis = { pay.charge,
      internal.reindex } })
    assert.equal(200, status)
    local ok = fx.by_id(body.success)
    assert.equal(RELEASE, ok[pay.charge].env_id)
    assert.equal(test_env, ok[internal.reindex].env_id)
  end)

  it("denies other environments and unrouted APIs", function()
    local status, body = server:batch("online", { apis = { pay.charge,
      internal.reindex, admin, other }, env_id = RELEASE })
    assert.equal(200, status)
    assert.same({ pay.charge }, fx.ids(body.success))
    local failed = fx.by_id(body.failure)
    assert.equal("APIG.1103", failed[internal.reindex].error_code)
    assert.equal("group internal-tools may be published only to TEST",
      failed[internal.reindex].error_msg)
    assert.equal("APIG.1005", failed[admin].error_code)
    assert.equal("admin write routes are published by the platform team",
      failed[admin].error_msg)
    assert.equal("APIG.1103", failed[other].error_code)
    assert.equal("group backoffice has no routing rule",
      failed[other].error_msg)
  end)
end)

describe("all_three.lua", function()
  it("combines aliases, the freeze and the remark prefix", function()
    local server = start_example("all_three.lua")
    local test_env = server:create_env("TEST")
    local ids = fx.create_apis(server, "combined", { "one" })
    local status, body = server:batch("online", { apis = { ids.one },
      env_id = "test", remark = "CHG-42 go" })
    assert.equal(200, status)
    assert.equal(test_env, body.success[1].env_id)
    assert.equal("[developer CHG-42] CHG-42 go", body.success[1].remark)
    server:stop()
  end)
end)
