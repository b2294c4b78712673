-- The Lua module "apig" in process: no server process, except where its
-- answers are compared with apig-server's.
local t = require "apig_test"
local cjson = require "cjson.safe"
local socket = require "socket"

package.cpath = (os.getenv("APIG_LUA_CPATH") or
  (t.build_dir .. "/lua/?.so")) .. ";" .. package.cpath
local apig = require "apig"

local BASE = "/v2/p1/apigw/instances/i1"
local TOKEN = { ["X-Auth-Token"] = "dev-token" }

local function open(opts)
  opts = opts or {}
  opts.instances = opts.instances or { "p1:i1" }
  return assert(apig.open(opts))
end

local function json(gw, method, target, body)
  if type(body) == "table" then body = cjson.encode(body) end
  local status, text = gw:request(method, target, TOKEN, body)
  return status, cjson.decode(text)
end

local function create_group(gw, name)
  local status, group = json(gw, "POST", BASE .. "/api-groups",
    { name = name })
  assert.equal(201, status)
  return group.id
end

local function create_api(gw, group_id, name, method)
  local status, api = json(gw, "POST", BASE .. "/apis", {
    group_id = group_id, name = name, type = 1, req_protocol = "HTTPS",
    req_method = method or "GET", req_uri = "/" .. name,
    auth_type = "NONE", backend_type = "MOCK",
    mock_info = { result_content = "ok" } })
  assert.equal(201, status)
  return api.id
end

local function write_policy(text)
  local path = t.tmpdir() .. "/policy.lua"
  t.write_file(path, text)
  return path
end

describe("apig.open", function()
  it("raises for bad arguments", function()
    assert.has_error(function() apig.open() end)
    assert.has_error(function() apig.open { data_dirr = "x" } end,
      "bad argument #1 to 'open' (unknown option 'data_dirr')")
    assert.has_error(function() apig.open { instances = "p1:i1" } end)
    assert.has_error(function() apig.open { fsync = "sometimes" } end)
    assert.has_error(function() apig.open { max_body = -1 } end)
  end)

  it("returns nil, message, code for a policy that fails to load", function()
    local path = write_policy("return {")
    local gw, message, code = apig.open { policy = path }
    assert.is_nil(gw)
    assert.matches("policy.lua:1:", message, 1, true)
    assert.equal("APIG.9999", code)
  end)

  it("closes once, also through __close and __gc", function()
    local gw = open()
    assert.is_nil(gw:close())
    assert.is_nil(gw:close())
    assert.has_error(function() gw:request("GET", "/healthz") end,
      "calling 'request' on bad self (the apig object is closed)")
    do
      local scoped <close> = open()
      assert.equal(200, (scoped:request("GET", "/healthz")))
    end
    for _ = 1, 20 do open() end
    collectgarbage()
    collectgarbage()
    assert.matches("apig %(closed%)", tostring(gw))
  end)

  it("raises for a method called on another value", function()
    local gw = open()
    assert.has_error(function() gw.request({}, "GET", "/healthz") end)
    gw:close()
  end)
end)

describe("apig object", function()
  local gw, group, ids
  before_each(function()
    gw = open()
    group = create_group(gw, "shop")
    ids = {}
    for i = 1, 3 do ids[i] = create_api(gw, group, "api_" .. i) end
  end)
  after_each(function() gw:close() end)

  it("answers requests with status, body and headers", function()
    local status, body, headers = gw:request("GET", BASE .. "/envs", TOKEN)
    assert.equal(200, status)
    assert.equal(1, cjson.decode(body).total)
    assert.equal("application/json;charset=UTF-8", headers["Content-Type"])
    assert.matches("^%x+$", headers["X-Request-Id"])
    assert.equal(32, #headers["X-Request-Id"])
    assert.equal(401, (gw:request("GET", BASE .. "/envs")))
  end)

  it("publishes in request order, duplicates once", function()
    local result = assert(gw:publish {
      apis = { ids[2], "unknown", ids[1], ids[2] },
      env_id = apig.RELEASE, remark = "r1" })
    assert.equal(2, #result.success)
    assert.equal(ids[2], result.success[1].api_id)
    assert.equal(ids[1], result.success[2].api_id)
    assert.equal("r1", result.success[1].remark)
    assert.equal(32, #result.success[1].publish_id)
    assert.equal(1, #result.failure)
    assert.same({ api_id = "unknown", error_code = "APIG.3002",
                  error_msg = "Api unknown not found" }, result.failure[1])
  end)

  it("takes offline and reports APIs not online", function()
    local online = assert(gw:publish { apis = { ids[1] },
                                       env_id = apig.RELEASE })
    local result = assert(gw:offline { apis = { ids[1], ids[2] },
                                       env_id = apig.RELEASE })
    assert.equal(1, #result.success)
    assert.equal(online.success[1].version_id, result.success[1].version_id)
    assert.is_nil(result.success[1].publish_id)
    assert.equal("APIG.3015", result.failure[1].error_code)
    assert.equal("api_2", result.failure[1].api_name)
  end)

  it("publishes a whole group with group_id", function()
    local result = assert(gw:publish { group_id = group,
                                       env_id = apig.RELEASE })
    assert.equal(3, #result.success)
  end)

  it("returns nil, message, code for request-wide errors", function()
    local result, message, code, status = gw:publish {
      apis = ids, env_id = "nowhere" }
    assert.is_nil(result)
    assert.equal("Environment nowhere does not exist", message)
    assert.equal("APIG.3003", code)
    assert.equal(404, status)

    local many = {}
    for i = 1, 1001 do many[i] = ids[1] end
    result, message, code = gw:publish { apis = many, env_id = apig.RELEASE }
    assert.is_nil(result)
    assert.equal("APIG.2011", code)
    assert.matches("parameterName:apis", message, 1, true)

    result, _, code = gw:publish { env_id = apig.RELEASE }
    assert.equal("APIG.2001", code)
    result, _, code = gw:publish { apis = ids, env_id = apig.RELEASE,
                                   remark = ("x"):rep(256) }
    assert.equal("APIG.2011", code)
    result, _, code = gw:publish { apis = ids, env_id = apig.RELEASE,
                                   instance_id = "other" }
    assert.equal("APIG.3030", code)
    local _, versions = json(gw, "GET", BASE .. "/apis/publish/" .. ids[1])
    assert.equal(0, versions.total)
  end)

  it("raises for bad batch arguments", function()
    assert.has_error(function() gw:publish() end)
    assert.has_error(function() gw:publish { apis = "x" } end)
    assert.has_error(function() gw:publish { apis = { 1 } } end)
    assert.has_error(function() gw:publish { env = apig.RELEASE } end)
    assert.has_error(function() gw:request("GET") end)
    assert.has_error(function() gw:request("GET", "/", { X = 1 }) end)
  end)

  it("raises for strings holding a NUL byte, and changes nothing",
    function()
      local cases = {
        function() gw:publish { apis = { ids[2] .. "\0junk" },
                                env_id = apig.RELEASE } end,
        function() gw:publish { apis = { ids[2] },
                                env_id = apig.RELEASE .. "\0zz" } end,
        function() gw:publish { apis = { ids[2] }, env_id = apig.RELEASE,
                                remark = "a\0b" } end,
        function() gw:request("GET", BASE .. "\0/envs") end,
        function() gw:request("GE\0T", BASE .. "/envs") end,
      }
      for _, case in ipairs(cases) do
        assert.has_error(case)
      end
      local _, versions = json(gw, "GET", BASE .. "/apis/publish/" .. ids[2])
      assert.equal(0, versions.total)
    end)

  it("keeps at most 10 versions per API and environment", function()
    for _ = 1, 12 do
      assert(gw:publish { apis = { ids[1] }, env_id = apig.RELEASE })
    end
    local _, versions = json(gw, "GET", BASE .. "/apis/publish/" .. ids[1])
    assert.equal(10, versions.total)
  end)

  it("does not interfere with a second object", function()
    local other = open()
    local other_group = create_group(other, "other_shop")
    create_api(other, other_group, "other_api")
    assert(gw:publish { apis = ids, env_id = apig.RELEASE })
    local _, mine = json(gw, "GET", BASE .. "/apis")
    local _, theirs = json(other, "GET", BASE .. "/apis")
    assert.equal(3, mine.total)
    assert.equal(1, theirs.total)
    assert.equal("", theirs.apis[1].run_env_id)
    other:close()
    assert.equal(200, (gw:request("GET", BASE .. "/apis", TOKEN)))
  end)

  it("works from a coroutine", function()
    local co = coroutine.wrap(function()
      local result = assert(gw:publish { apis = { ids[1] },
                                         env_id = apig.RELEASE })
      coroutine.yield(result.success[1].api_id)
      result = assert(gw:offline { apis = { ids[1] },
                                   env_id = apig.RELEASE })
      coroutine.yield(#result.success)
    end)
    assert.equal(ids[1], co())
    local _, api = json(gw, "GET", BASE .. "/apis/" .. ids[1])
    assert.equal(apig.RELEASE, api.run_env_id)
    assert.equal(1, co())
    _, api = json(gw, "GET", BASE .. "/apis/" .. ids[1])
    assert.equal("", api.run_env_id)
  end)
end)

describe("policy hooks in process", function()
  it("authorize, rewrite_remark and map_env run per API", function()
    local path = write_policy([[
      local policy = {}
      function policy.map_env(env_id, api, ctx)
        if api.name == "api_2" then return "missing" end
        return env_id or "DEFAULT_ENVIRONMENT_RELEASE_ID"
      end
      function policy.authorize(api, env, ctx)
        if api.req_method == "DELETE" then
          return false, "no DELETE", "APIG.3999"
        end
        return true
      end
      function policy.rewrite_remark(remark, api, env, ctx)
        if api.name == "api_4" then error("broken on purpose") end
        return ctx.action .. ":" .. remark
      end
      return policy
    ]])
    local gw = open { policy = path }
    local group = create_group(gw, "shop")
    local ids = { create_api(gw, group, "api_1"),
                  create_api(gw, group, "api_2"),
                  create_api(gw, group, "api_3", "DELETE"),
                  create_api(gw, group, "api_4") }
    local result = assert(gw:publish { apis = ids, remark = "go" })
    assert.equal(1, #result.success)
    assert.equal("online:go", result.success[1].remark)
    assert.equal(apig.RELEASE, result.success[1].env_id)
    local codes = {}
    for _, item in ipairs(result.failure) do
      codes[item.api_name] = item.error_code
    end
    assert.same({ api_2 = "APIG.3003", api_3 = "APIG.3999",
                  api_4 = "APIG.9999" }, codes)
    assert.matches("rewrite_remark", result.failure[3].error_msg, 1, true)
    gw:close()
  end)
end)

describe("persistence in process", function()
  it("keeps a batch across close and reopen", function()
    local data_dir = t.tmpdir() .. "/data"
    local gw = open { data_dir = data_dir }
    local group = create_group(gw, "shop")
    local ids = { create_api(gw, group, "api_1"),
                  create_api(gw, group, "api_2") }
    local published = assert(gw:publish { apis = ids, env_id = apig.RELEASE,
                                          remark = "kept" })
    gw:close()

    gw = open { data_dir = data_dir, instances = {} }
    local _, api = json(gw, "GET", BASE .. "/apis/" .. ids[2])
    assert.equal(apig.RELEASE, api.run_env_id)
    assert.equal(published.success[2].publish_id, api.publish_id)
    local _, versions = json(gw, "GET", BASE .. "/apis/publish/" .. ids[1])
    assert.equal(published.success[1].version_id,
                 versions.api_versions[1].version_id)
    assert.equal("kept", versions.api_versions[1].remark)
    assert.is_true(gw:snapshot())
    gw:close()

    gw = open { data_dir = data_dir }
    _, api = json(gw, "GET", BASE .. "/apis/" .. ids[1])
    assert.equal(apig.RELEASE, api.run_env_id)
    gw:close()
  end)

  it("snapshot without a data_dir returns nil, message, code", function()
    local gw = open()
    local ok, message, code = gw:snapshot()
    assert.is_nil(ok)
    assert.matches("data_dir", message, 1, true)
    assert.equal("APIG.9999", code)
    gw:close()
  end)
end)

-- Replaces ids, times and version numbers so that answers of two
-- gateways compare equal.
local function mask(text)
  return (text:gsub("%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x" ..
                    "%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x", "<id>")
              :gsub("%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z", "<time>")
              :gsub('"version_no":"%d+"', '"version_no":"<no>"'))
end

describe("in-process answers", function()
  it("are byte-identical to apig-server's, ids and times masked", function()
    local server = t.start { instances = { "p1:i1" } }
    local gw = open()
    local function both(method, target, body)
      local s1, b1 = server:request(method, target, body)
      local s2, b2 = gw:request(method, target, TOKEN, body)
      assert.equal(s1, s2)
      assert.equal(mask(b1), mask(b2))
      return cjson.decode(b1), cjson.decode(b2)
    end
    local g1, g2 = both("POST", BASE .. "/api-groups", '{"name":"shop"}')
    local api_body = '{"group_id":"%s","name":"api_%d","type":1,' ..
      '"req_protocol":"HTTPS","req_method":"GET","req_uri":"/a%d",' ..
      '"auth_type":"NONE","backend_type":"MOCK",' ..
      '"mock_info":{"result_content":"ok"}}'
    local a1, a2 = {}, {}
    for i = 1, 3 do
      local x1 = select(2, server:request("POST", BASE .. "/apis",
        api_body:format(g1.id, i, i)))
      local x2 = select(2, gw:request("POST", BASE .. "/apis", TOKEN,
        api_body:format(g2.id, i, i)))
      assert.equal(mask(x1), mask(x2))
      a1[i], a2[i] = cjson.decode(x1).id, cjson.decode(x2).id
    end
    local function batch(action, ids, extra)
      local target = BASE .. "/apis/publish?action=" .. action
      local s1, b1 = server:request("POST", target,
        '{"apis":["' .. table.concat(ids[1], '","') .. '"]' .. extra)
      local s2, b2 = gw:request("POST", target, TOKEN,
        '{"apis":["' .. table.concat(ids[2], '","') .. '"]' .. extra)
      assert.equal(s1, s2)
      assert.equal(mask(b1), mask(b2))
    end
    local release = ',"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID"'
    batch("online", { a1, a2 }, release .. ',"remark":"r"}')
    batch("online", { { a1[1], "nope" }, { a2[1], "nope" } }, release .. "}")
    batch("offline", { { a1[2] }, { a2[2] } }, release .. "}")
    batch("offline", { { a1[2] }, { a2[2] } }, release .. "}")
    batch("sideways", { a1, a2 }, release .. "}")
    batch("online", { a1, a2 }, ',"env_id":"nowhere"}')
    batch("online", { a1, a2 }, release .. ',"remark":7}')
    batch("online", { a1, a2 }, release .. ',"env_id":"x"}')
    both("GET", BASE .. "/apis?limit=2")
    both("GET", BASE .. "/envs")
    both("GET", BASE .. "/nothing")
    both("DELETE", BASE .. "/envs")
    server:stop()
    gw:close()
  end)
end)

describe("serving from Lua", function()
  -- Sends a request with a non-blocking socket while the object's loop
  -- runs in steps.
  local function fetch(gw, port, target)
    local sock = assert(socket.tcp())
    sock:settimeout(0)
    sock:connect("127.0.0.1", port)
    local request = "GET " .. target .. " HTTP/1.1\r\nHost: x\r\n" ..
      "X-Auth-Token: dev\r\nConnection: close\r\n\r\n"
    local sent, chunks = false, {}
    local deadline = socket.gettime() + 10
    while socket.gettime() < deadline do
      gw:step(10)
      if not sent then
        sent = sock:send(request) ~= nil
      else
        local data, err, partial = sock:receive(8192)
        local piece = data or partial
        if piece and #piece > 0 then chunks[#chunks + 1] = piece end
        if err == "closed" then break end
      end
    end
    sock:close()
    return table.concat(chunks)
  end

  it("answers HTTP on its own loop with listen, step and stop", function()
    local gw = open()
    local port = assert(gw:listen("127.0.0.1:0"))
    assert.equal(port, gw:port())
    local answer = fetch(gw, port, BASE .. "/envs")
    assert.matches("^HTTP/1.1 200", answer)
    assert.matches('"name":"RELEASE"', answer, 1, true)
    assert.has_error(function() gw:listen("127.0.0.1:0") end,
      "calling 'listen' on bad self (the apig object is serving already)")
    assert.has_error(function() gw:request("GET", "/healthz") end)
    assert.has_error(function() gw:publish { apis = { "x" } } end)
    assert.is_true(gw:stop())
    assert.equal(200, (gw:request("GET", "/healthz")))
    assert.is_nil(gw:port())
    assert.is_false(gw:step(0))
    gw:close()
  end)

  it("returns nil, message, code for an address it cannot use", function()
    local gw = open()
    local port, message, code = gw:listen("not-an-address")
    assert.is_nil(port)
    assert.matches("not-an-address", message, 1, true)
    assert.equal("APIG.9999", code)
    gw:close()
  end)

  it("refuses addresses outside loopback in development mode", function()
    local gw = open()
    for _, address in ipairs { "0.0.0.0:0", "[::]:0", "192.0.2.1:0" } do
      local port, message, code = gw:listen(address)
      assert.is_nil(port)
      assert.matches("refusing to listen on " .. address, message, 1, true)
      assert.equal("APIG.9999", code)
    end
    -- allow_remote passes the check; 192.0.2.1 is on no interface here,
    -- so the listen itself fails and nothing is exposed.
    local port, message = gw:listen("192.0.2.1:0", { allow_remote = true })
    assert.is_nil(port)
    assert.not_matches("refusing", message)
    gw:close()
  end)

  it("serve runs until duration_ms ends", function()
    local gw = open()
    local started = socket.gettime()
    local ok, reason = gw:serve { listen = "127.0.0.1:0", duration_ms = 200 }
    assert.is_true(ok)
    assert.equal("duration", reason)
    assert.is_true(socket.gettime() - started >= 0.19)
    assert.has_error(function() gw:serve { duration_ms = 1 } end)
    gw:close()
  end)

  it("close stops a server that is still listening", function()
    local gw = open()
    assert(gw:listen("127.0.0.1:0"))
    gw:close()
    assert.matches("closed", tostring(gw))
  end)
end)

describe("examples/embed/publish.lua", function()
  it("imports, publishes under the policy and prints the result", function()
    local data_dir = t.tmpdir() .. "/data"
    local source = t.source_dir
    local command = "LUA_CPATH=" .. t.shell_quote(
      (os.getenv("APIG_LUA_CPATH") or (t.build_dir .. "/lua/?.so")) .. ";;") ..
      " lua5.4 " .. source .. "/examples/embed/publish.lua " ..
      source .. "/examples/catalogue/petstore.json " ..
      source .. "/examples/embed/policy.lua " .. data_dir .. " 2>&1"
    local out = t.capture(command)
    assert.matches("10 published, 2 failed", out, 1, true)
    assert.matches("failed    deletePet        APIG.1005", out, 1, true)
    assert.matches('remark "[embedded] first release"', out, 1, true)
  end)
end)
