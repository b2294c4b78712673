-- One bad item never spoils a batch (with a denying policy), and sandbox
-- escapes fail inside a hook that then allows the API normally.
local t = require "apig_test"
local fx = require "apig_policy_fixture"

local RELEASE = t.RELEASE

describe("a batch with a denying policy", function()
  local server, ids, test_env

  setup(function()
    server = fx.start([[
      return { authorize = function(api)
        return api.name ~= "api_a3"
      end }]])
    test_env = server:create_env("TEST")
    ids = fx.create_apis(server, "c01", { "api_a1", "api_a2", "api_a3",
      "api_a4" })
    for _, n in ipairs({ "a1", "a2", "a3", "a4" }) do ids[n] = ids["api_" .. n] end
  end)
  teardown(function() server:stop() end)

  it("reports each item on its own", function()
    local status, body = server:batch("online",
      { apis = { ids.a1, ids.a2 }, env_id = test_env })
    assert.equal(200, status)
    assert.equal(2, #body.success)

    status, body = server:batch("online", { apis = { ids.a1, "nope",
      ids.a2, ids.a3 }, env_id = RELEASE, remark = "c01" })
    assert.equal(200, status)
    assert.same({ ids.a1, ids.a2 }, fx.ids(body.success))
    for _, item in ipairs(body.success) do
      assert.equal("c01", item.remark)
      assert.equal(RELEASE, item.env_id)
      for _, field in ipairs({ "publish_id", "api_id", "api_name",
          "env_id", "remark", "publish_time", "version_id" }) do
        assert.is_not_nil(item[field], field)
      end
    end
    assert.same({ "nope", ids.a3 }, fx.ids(body.failure))
    assert.equal("APIG.3002", body.failure[1].error_code)
    assert.equal("Api nope not found", body.failure[1].error_msg)
    assert.is_nil(body.failure[1].api_name)
    assert.equal("APIG.1005", body.failure[2].error_code)
    assert.equal("api_a3", body.failure[2].api_name)
    for _, name in ipairs({ "api_a1", "api_a2" }) do
      local _, total = fx.versions(server, ids[name], RELEASE)
      assert.equal(1, total, name)
    end
    local _, total = fx.versions(server, ids.a3, RELEASE)
    assert.equal(0, total)

    local before = fx.versions(server, ids.a1, RELEASE)
    for round = 1, 2 do
      status, body = server:batch("offline", { apis = { ids.a1, ids.a4,
        "nope" }, env_id = test_env })
      assert.equal(200, status, "round " .. round)
      local failed = fx.by_id(body.failure)
      if round == 1 then
        assert.same({ ids.a1 }, fx.ids(body.success))
        assert.equal(test_env, body.success[1].env_id)
      else
        assert.same({}, body.success)
        assert.equal("APIG.3015", failed[ids.a1].error_code)
      end
      assert.equal("APIG.3015", failed[ids.a4].error_code)
      assert.equal("APIG.3002", failed.nope.error_code)
    end
    assert.same(before, (fx.versions(server, ids.a1, RELEASE)))
  end)
end)

describe("sandbox escapes", function()
  local server, ids

  setup(function()
    -- Real bytecode of `return io`, from this process's Lua 5.4.
    local bytecode = ("%q"):format(string.dump(load("return io")))
    local source = ([=[
      local p = {}
      local function usable(f, ...)
        local ok, value = pcall(f, ...)
        return ok and value ~= nil
      end
      function p.authorize(api)
        if api.name == "escape" then
          local dump = string.dump or function() end
          local code = BYTECODE
          local found = {
            usable(function() return io.open("/tmp/apig-escape", "w") end),
            usable(function() return os.execute("touch /tmp/apig-escape") end),
            usable(function() return os.getenv("HOME") end),
            usable(function() return require("io") end),
            usable(function() return package.loadlib("libc.so.6", "*") end),
            usable(function() return debug.getregistry() end),
            usable(function() return load("return io")() end),
            usable(function() return dump(print) end),
            usable(function() return load(code, "b", "b") end),
            usable(function() return load(code) end),
            usable(function() return loadfile("/etc/passwd") end),
            usable(function() return dofile("/etc/passwd") end),
            usable(function()
              collectgarbage("stop")
              return collectgarbage("isrunning") == false or nil
            end),
          }
          for i = 1, 13 do
            if found[i] then return false, "escape " .. i .. " worked" end
          end
          return true
        end
        if api.name == "unhook" then
          pcall(function() debug.sethook() end)
          while true do end
        end
        return true
      end
      return p]=]):gsub("BYTECODE", function() return bytecode end)
    server = fx.start(source)
    ids = fx.create_apis(server, "escapes", { "escape", "unhook", "after" })
  end)
  teardown(function() server:stop() end)

  it("blocks every escape and allows normally", function()
    os.remove("/tmp/apig-escape")
    local status, body = server:batch("online", { apis = { ids.escape,
      ids.unhook, ids.after }, env_id = RELEASE })
    assert.equal(200, status)
    assert.same({ ids.escape, ids.after }, fx.ids(body.success))
    assert.equal(1, #body.failure)
    assert.equal("APIG.9999", body.failure[1].error_code)
    assert.equal("authorize: instruction budget of 1000000 exceeded",
      body.failure[1].error_msg)
    assert.is_nil(io.open("/tmp/apig-escape"))
  end)
end)
