-- PUT and DELETE …/envs/{env_id}, and the paging of GET …/envs.
local t = require "apig_test"
local c = require "api_checks"

describe("environment calls", function()
  local server, base

  setup(function()
    server = t.start { instances = { "p1:i1" } }
    base = server.base
  end)
  teardown(function() server:stop() end)

  local function find_env(id)
    local status, page = server:json("GET", base .. "/envs?limit=500")
    assert.equal(200, status)
    for _, env in ipairs(page.envs) do
      if env.id == id then return env end
    end
  end

  it("updates name and remark", function()
    local id = server:create_env("env_update")
    local status, env = server:json("PUT", base .. "/envs/" .. id,
      { name = "env_renamed", remark = "new remark" })
    assert.equal(200, status)
    assert.equal(c.ENV_FIELDS, c.keys(env))
    assert.equal(id, env.id)
    assert.equal("env_renamed", env.name)
    assert.equal("new remark", env.remark)
    assert.is_true(c.fractional(env.create_time), env.create_time)
    local listed = find_env(id)
    assert.equal("env_renamed", listed.name)
    assert.is_true(c.whole_seconds(listed.create_time), listed.create_time)
  end)

  it("keeps the remark when the body has none", function()
    local _, created = server:json("POST", base .. "/envs",
      { name = "env_keep", remark = "kept" })
    local status, env = server:json("PUT", base .. "/envs/" .. created.id,
      { name = "env_keep2" })
    assert.equal(200, status)
    assert.equal("kept", env.remark)
  end)

  it("accepts its own unchanged name", function()
    local id = server:create_env("env_same")
    local status, env = server:json("PUT", base .. "/envs/" .. id,
      { name = "env_same", remark = "" })
    assert.equal(200, status)
    assert.equal("env_same", env.name)
  end)

  it("rejects invalid bodies without a change", function()
    local id = server:create_env("env_bad")
    server:create_env("env_taken")
    local cases = {
      { {}, 400, "APIG.2001" },
      { { remark = "x" }, 400, "APIG.2001" },
      { { name = "ab" }, 400, "APIG.2011" },
      { { name = "1abc" }, 400, "APIG.2011" },
      { { name = "env-dash" }, 400, "APIG.2011" },
      { { name = ("e"):rep(65) }, 400, "APIG.2011" },
      { { name = 42 }, 400, "APIG.2011" },
      { { name = "env_ok", remark = ("r"):rep(256) }, 400, "APIG.2011" },
      { { name = "env_ok", remark = true }, 400, "APIG.2011" },
      { { name = "env_taken" }, 400, "APIG.3205" },
      { { name = "RELEASE" }, 400, "APIG.3205" },
      { "not json", 400, "APIG.2000" },
      { "[]", 400, "APIG.2000" },
      { '{"name":"env_ok","name":"env_ok2"}', 400, "APIG.2000" },
    }
    local before = c.state(server)
    for _, case in ipairs(cases) do
      local status, body = server:json("PUT", base .. "/envs/" .. id, case[1])
      c.is_error(status, body, case[2], case[3])
    end
    assert.equal(before, c.state(server))
  end)

  it("names the offending field", function()
    local id = server:create_env("env_msg")
    local _, body = server:json("PUT", base .. "/envs/" .. id, {})
    assert.matches("parameterName:name", body.error_msg, 1, true)
    _, body = server:json("PUT", base .. "/envs/" .. id,
      { name = "env_msg", remark = 1 })
    assert.matches("parameterName:remark", body.error_msg, 1, true)
  end)

  it("answers 404 APIG.3003 for an unknown environment", function()
    local missing = ("0"):rep(32)
    local status, body = server:json("PUT", base .. "/envs/" .. missing,
      { name = "env_x" })
    c.is_error(status, body, 404, "APIG.3003")
    assert.equal("Environment " .. missing .. " does not exist",
      body.error_msg)
    status, body = server:json("DELETE", base .. "/envs/" .. missing)
    c.is_error(status, body, 404, "APIG.3003")
  end)

  it("protects RELEASE from update and delete", function()
    local before = c.state(server)
    local status, body = server:json("PUT", base .. "/envs/" .. t.RELEASE,
      { name = "RELEASE" })
    c.is_error(status, body, 403, "APIG.1103")
    status, body = server:json("DELETE", base .. "/envs/" .. t.RELEASE)
    c.is_error(status, body, 403, "APIG.1103")
    assert.equal(before, c.state(server))
  end)

  it("deletes an environment with 204 and no body", function()
    local id = server:create_env("env_gone")
    local status, text, headers = server:request("DELETE", base .. "/envs/" ..
      id)
    assert.equal(204, status)
    assert.equal("", text)
    assert.is_nil(headers["content-type"])
    assert.matches("^%x+$", headers["x-request-id"])
    assert.is_nil(find_env(id))
    status = server:json("DELETE", base .. "/envs/" .. id)
    assert.equal(404, status)
  end)

  it("refuses to delete an environment with a published API", function()
    local env = server:create_env("env_busy")
    local group = server:create_group("group_env_busy")
    local api = server:create_api(group, "api_env_busy")
    local status = server:batch("online", { apis = { api }, env_id = env })
    assert.equal(200, status)
    local body
    status, body = server:json("DELETE", base .. "/envs/" .. env)
    c.is_error(status, body, 403, "APIG.3418")
    assert.is_table(find_env(env))
    status = server:batch("offline", { apis = { api }, env_id = env })
    assert.equal(200, status)
    status = server:request("DELETE", base .. "/envs/" .. env)
    assert.equal(204, status)
  end)

  it("frees quota after a delete", function()
    local ids = {}
    local status, page = server:json("GET", base .. "/envs")
    for i = page.total, 10 do
      ids[#ids + 1] = server:create_env(("env_q%d"):format(i))
    end
    local body
    status, body = server:json("POST", base .. "/envs", { name = "env_over" })
    c.is_error(status, body, 403, "APIG.3104")
    assert.equal(204, (server:request("DELETE", base .. "/envs/" .. ids[1])))
    status = server:json("POST", base .. "/envs", { name = "env_over" })
    assert.equal(201, status)
  end)

  describe("list paging", function()
    local total
    setup(function()
      local _, page = server:json("GET", base .. "/envs")
      total = page.total
    end)

    local function page_of(query)
      local status, page = server:json("GET", base .. "/envs" .. query)
      assert.equal(200, status)
      assert.equal(#page.envs, page.size)
      return page
    end

    it("returns nothing for an offset past the end", function()
      local page = page_of(("?offset=%d"):format(total + 5))
      assert.equal(total, page.total)
      assert.equal(0, page.size)
    end)

    it("treats a negative offset as 0", function()
      local page = page_of("?offset=-3&limit=2")
      assert.equal(2, page.size)
      assert.equal(page_of("?limit=2").envs[1].id, page.envs[1].id)
    end)

    it("walks every environment once with small pages", function()
      local seen, offset = {}, 0
      while offset < total do
        local page = page_of(("?limit=3&offset=%d"):format(offset))
        for _, env in ipairs(page.envs) do
          assert.is_nil(seen[env.id])
          seen[env.id] = true
          assert.equal(c.ENV_FIELDS, c.keys(env))
          assert.is_true(c.whole_seconds(env.create_time))
        end
        offset = offset + 3
      end
      local count = 0
      for _ in pairs(seen) do count = count + 1 end
      assert.equal(total, count)
    end)

    it("rejects a non-integer offset or limit", function()
      local status, body = server:json("GET", base .. "/envs?offset=abc")
      c.is_error(status, body, 400, "APIG.2012")
      status, body = server:json("GET", base .. "/envs?limit=1.5")
      c.is_error(status, body, 400, "APIG.2012")
    end)
  end)
end)
