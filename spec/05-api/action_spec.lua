-- POST …/apis/action: publish or take offline one API.
local t = require "apig_test"
local c = require "api_checks"

describe("single publish and take offline", function()
  local server, base, group

  setup(function()
    server = t.start { instances = { "p1:i1" } }
    base = server.base
    group = server:create_group("group_action")
  end)
  teardown(function() server:stop() end)

  local function action(body)
    return server:json("POST", base .. "/apis/action", body)
  end

  it("publishes with 201 and the seven fields", function()
    local id = server:create_api(group, "api_single")
    local status, item = action { action = "online", env_id = t.RELEASE,
                                  api_id = id, remark = "first 发布" }
    assert.equal(201, status)
    assert.equal(c.PUBLISH_FIELDS, c.keys(item))
    assert.equal(id, item.api_id)
    assert.equal("api_single", item.api_name)
    assert.equal(t.RELEASE, item.env_id)
    assert.equal("first 发布", item.remark)
    assert.matches("^%x+$", item.publish_id)
    assert.equal(32, #item.publish_id)
    assert.equal(32, #item.version_id)
    assert.is_true(c.fractional(item.publish_time), item.publish_time)
    local _, versions = server:json("GET", base .. "/apis/publish/" .. id)
    assert.equal(1, versions.total)
    assert.equal(item.version_id, versions.api_versions[1].version_id)
    assert.equal(1, versions.api_versions[1].status)
  end)

  it("keeps publish_id across publishes and renews it after offline",
    function()
      local id = server:create_api(group, "api_pubid")
      local body = { action = "online", env_id = t.RELEASE, api_id = id }
      local _, first = action(body)
      local _, second = action(body)
      assert.equal(first.publish_id, second.publish_id)
      assert.are_not.equal(first.version_id, second.version_id)
      assert.equal("", second.remark)
      local status, off = action { action = "offline", env_id = t.RELEASE,
                                   api_id = id }
      assert.equal(201, status)
      assert.equal(c.OFFLINE_FIELDS, c.keys(off))
      assert.equal(second.version_id, off.version_id)
      assert.equal("api_pubid", off.api_name)
      assert.equal(t.RELEASE, off.env_id)
      local _, third = action(body)
      assert.are_not.equal(first.publish_id, third.publish_id)
    end)

  it("keeps the history after offline, all not effective", function()
    local id = server:create_api(group, "api_hist")
    action { action = "online", env_id = t.RELEASE, api_id = id }
    action { action = "offline", env_id = t.RELEASE, api_id = id }
    local _, versions = server:json("GET", base .. "/apis/publish/" .. id)
    assert.equal(1, versions.total)
    assert.equal(2, versions.api_versions[1].status)
    local _, shown = server:json("GET", base .. "/apis/" .. id)
    assert.equal("", shown.run_env_id)
  end)

  it("rejects bad requests without a change", function()
    local id = server:create_api(group, "api_reject")
    local env = server:create_env("env_action")
    local missing = ("c"):rep(32)
    local cases = {
      { { env_id = env, api_id = id }, 400, "APIG.2001", "action" },
      { { action = "online", api_id = id }, 400, "APIG.2001", "env_id" },
      { { action = "online", env_id = "", api_id = id }, 400, "APIG.2001",
        "env_id" },
      { { action = "online", env_id = env }, 400, "APIG.2001", "api_id" },
      { { action = "publish", env_id = env, api_id = id }, 400, "APIG.2011" },
      { { action = "ONLINE", env_id = env, api_id = id }, 400, "APIG.2011" },
      { { action = 1, env_id = env, api_id = id }, 400, "APIG.2011",
        "action" },
      { { action = "online", env_id = {}, api_id = id }, 400, "APIG.2011",
        "env_id" },
      { { action = "online", env_id = env, api_id = 7 }, 400, "APIG.2011",
        "api_id" },
      { { action = "online", env_id = env, api_id = id,
          remark = ("r"):rep(256) }, 400, "APIG.2011", "remark" },
      { { action = "online", env_id = env, api_id = id, remark = false },
        400, "APIG.2011", "remark" },
      { { action = "online", env_id = missing, api_id = id }, 404,
        "APIG.3003" },
      { { action = "online", env_id = env, api_id = missing }, 404,
        "APIG.3002" },
      { { action = "offline", env_id = env, api_id = id }, 404, "APIG.3015" },
      { "[]", 400, "APIG.2000" },
      { "", 400, "APIG.2000" },
      { '{"action":"online","action":"offline"}', 400, "APIG.2000" },
    }
    local before = c.state(server, { id })
    for _, case in ipairs(cases) do
      local status, body = action(case[1])
      c.is_error(status, body, case[2], case[3])
      if case[4] then
        assert.matches("parameterName:" .. case[4], body.error_msg, 1, true)
      end
    end
    assert.equal(before, c.state(server, { id }))
  end)

  it("names the value in its messages", function()
    local id = server:create_api(group, "api_messages")
    local missing = ("d"):rep(32)
    local _, body = action { action = "online", env_id = t.RELEASE,
                             api_id = missing }
    assert.equal("API " .. missing .. " does not exist", body.error_msg)
    _, body = action { action = "online", env_id = missing, api_id = id }
    assert.equal("Environment " .. missing .. " does not exist",
      body.error_msg)
    _, body = action { action = "online!", env_id = t.RELEASE, api_id = id }
    assert.equal('Invalid parameter value: parameter action should be ' ..
      '"online" or "offline"', body.error_msg)
  end)

  describe("with a policy", function()
    local guarded, guarded_group

    setup(function()
      local dir = t.tmpdir()
      t.write_file(dir .. "/policy.lua", [[
local policy = {}
function policy.authorize(api, env, ctx)
  if api.name == "api_denied" then return false, "denied by rule" end
  if api.name == "api_coded" then
    return false, "no access to this group", "APIG.1101"
  end
  if api.name == "api_broken" then error("boom") end
  return ctx.action == "online" or ctx.action == "offline"
end
function policy.rewrite_remark(remark, api, env, ctx)
  return "[" .. ctx.action .. "] " .. remark
end
return policy
]])
      guarded = t.start { instances = { "p1:i1" },
                          args = { "--policy", dir .. "/policy.lua" } }
      guarded_group = guarded:create_group("group_policy")
    end)
    teardown(function() guarded:stop() end)

    local function guarded_action(name)
      local id = guarded:create_api(guarded_group, name)
      return guarded:json("POST", guarded.base .. "/apis/action",
        { action = "online", env_id = t.RELEASE, api_id = id,
          remark = "r" })
    end

    it("answers a denial with 403 APIG.1005 and its message", function()
      local status, body = guarded_action("api_denied")
      c.is_error(status, body, 403, "APIG.1005")
      assert.equal("denied by rule", body.error_msg)
    end)

    it("answers with the policy's own code", function()
      local status, body = guarded_action("api_coded")
      c.is_error(status, body, 403, "APIG.1101")
      assert.equal("no access to this group", body.error_msg)
    end)

    it("answers a failing hook with 500 APIG.9999", function()
      local status, body = guarded_action("api_broken")
      c.is_error(status, body, 500, "APIG.9999")
      assert.matches("authorize", body.error_msg)
      assert.not_matches("%.lua", body.error_msg)
    end)

    it("stores the rewritten remark", function()
      local status, item = guarded_action("api_allowed")
      assert.equal(201, status)
      assert.equal("[online] r", item.remark)
    end)
  end)
end)
