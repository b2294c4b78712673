-- apig-server with --credentials: tokens, duplicate headers, start-up
-- errors, reload on SIGHUP, secrets kept out of logs, and development mode.

local t = require "apig_test"
local sign = require "apig_sign"
local fixture = require "apig_auth_fixture"

-- Runs apig-server in the foreground (it must exit by itself) and returns
-- its exit status and its output.
local function run_server(args)
  local words = { t.shell_quote(t.server_binary), "--data-dir",
                  t.shell_quote(t.tmpdir() .. "/data") }
  for _, arg in ipairs(args) do words[#words + 1] = t.shell_quote(arg) end
  local out = t.capture("timeout 20 " .. table.concat(words, " ") ..
    " 2>&1; echo \"exit=$?\"")
  local status = tonumber(out:match("exit=(%d+)\n?$"))
  return status, out:gsub("exit=%d+\n?$", "")
end

local function wait_for_log(server, pattern, timeout)
  local deadline = os.time() + (timeout or 10)
  repeat
    if server:log():find(pattern, 1, true) then return true end
    t.sleep(0.02)
  until os.time() > deadline
  return false
end

local function count(text, needle)
  local n, from = 0, 1
  while true do
    local at = text:find(needle, from, true)
    if not at then return n end
    n, from = n + 1, at + 1
  end
end

describe("tokens", function()
  local server, creds

  setup(function() server, creds = fixture.start() end)
  teardown(function() server:stop() end)

  local function assert_auth_error(status, body, headers, code)
    assert.equal(401, status)
    assert.equal(code, body.error_code)
    assert.equal(32, #headers["x-request-id"])
    assert.equal(headers["x-request-id"], body.request_id)
  end

  it("are required", function()
    local status, body, headers = server:json("GET", server.base .. "/envs",
      nil, { token = false })
    assert_auth_error(status, body, headers, "APIG.1000")
  end)

  it("reject an unknown or empty token", function()
    for _, token in ipairs { "tok-unknown", creds.tokens.admin .. "x", " " } do
      local status, body, headers = server:json("GET",
        server.base .. "/envs", nil, { ["X-Auth-Token"] = token })
      assert_auth_error(status, body, headers, "APIG.1002")
      assert.equal("Incorrect token or token resolution failed",
        body.error_msg)
    end
  end)

  it("accept the header name in any case", function()
    for _, name in ipairs { "x-auth-token", "X-AUTH-TOKEN", "X-Auth-Token" } do
      local status = server:json("GET", server.base .. "/envs", nil,
        { [name] = creds.tokens.admin })
      assert.equal(200, status, name)
    end
  end)

  it("turn off development mode", function()
    local status = server:json("GET", server.base .. "/envs", nil,
      { ["X-Auth-Token"] = "dev" })
    assert.equal(401, status)
    local log = server:log()
    assert.is_nil(log:find("development mode", 1, true))
    assert.is_nil(log:find("X-Auth-Token: dev", 1, true))
  end)

  describe("repeated auth headers", function()
    local function raw(headers, body)
      local lines = { "POST " .. server.base ..
        "/apis/publish?action=online HTTP/1.1", "Host: 127.0.0.1",
        "Connection: close" }
      for _, header in ipairs(headers) do lines[#lines + 1] = header end
      body = body or '{"apis":["x"],"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID"}'
      lines[#lines + 1] = "Content-Length: " .. #body
      return server:raw(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
    end

    local function assert_rejected(reply, label)
      assert.equal("HTTP/1.1 401", reply:sub(1, 12), label)
      assert.truthy(reply:find('"error_code":"APIG.1002"', 1, true), label)
      assert.truthy(reply:find('"request_id":"%x+"'), label)
    end

    it("reject two tokens, equal or not, in any order or case", function()
      local good, bad = creds.tokens.admin, "tok-unknown"
      local cases = {
        { "X-Auth-Token: " .. good, "X-Auth-Token: " .. good },
        { "X-Auth-Token: " .. good, "X-Auth-Token: " .. bad },
        { "X-Auth-Token: " .. bad, "X-Auth-Token: " .. good },
        { "x-auth-token: " .. good, "X-AUTH-TOKEN: " .. good },
        { "X-Auth-Token: " .. good, "X-Auth-Token: " },
      }
      for i, headers in ipairs(cases) do
        assert_rejected(raw(headers), "case " .. i)
      end
    end)

    it("reject two Authorization or X-Sdk-Date headers", function()
      local key = creds.keys["sdk-p1"]
      local req = sign.request { ak = key.ak, sk = key.sk, method = "POST",
        target = server.base .. "/apis/publish?action=online",
        headers = { { "Host", "127.0.0.1" } },
        body = '{"apis":["x"],"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID"}' }
      local date = "X-Sdk-Date: " .. sign.get_header(req, "X-Sdk-Date")
      local auth = "Authorization: " .. sign.get_header(req, "Authorization")
      assert.equal("HTTP/1.1 200", raw({ date, auth }, req.body):sub(1, 12))
      assert_rejected(raw({ date, auth, auth }, req.body), "Authorization")
      assert_rejected(raw({ date, date, auth }, req.body), "X-Sdk-Date")
      assert_rejected(raw({ date, auth, "authorization: Basic eDp5" },
        req.body), "mixed case")
    end)
  end)
end)

describe("credentials file", function()
  it("that fails to load stops the start with the reason", function()
    local dir = t.tmpdir()
    local secret = "tok-" .. fixture.random_hex(16)
    local cases = {
      { "missing.json", nil, "cannot open credentials file" },
      { "syntax.json", '{"tokens":[', "credentials file" },
      { "permission.json", '{"tokens":[{"name":"a","token":"' .. secret ..
        '","project_id":"p1","permissions":["write"]}]}',
        'unknown permission "write"' },
      { "repeated.json", '{"tokens":[{"name":"a","token":"' .. secret ..
        '","project_id":"p1","permissions":[]},{"name":"b","token":"' ..
        secret .. '","project_id":"p1","permissions":[]}]}',
        'tokens[1]: "token" repeats the one of tokens[0]' },
      { "field.json", '{"access_keys":[{"name":"a","ak":"AK1","sk":"' ..
        secret .. '","project_id":"p1","permission":["read"]}]}',
        'unknown field "permission"' },
    }
    for _, case in ipairs(cases) do
      local path = dir .. "/" .. case[1]
      if case[2] then
        t.write_file(path, case[2])
        os.execute("chmod 600 " .. t.shell_quote(path))
      end
      local status, out = run_server { "--listen", "127.0.0.1:0",
                                       "--credentials", path }
      assert.equal(1, status, case[1] .. ": " .. out)
      assert.matches("apig-server: cannot start: ", out, 1, true)
      assert.matches(case[3], out, 1, true)
      assert.matches(path, out, 1, true)
      assert.is_nil(out:find(secret, 1, true), case[1])
      assert.is_nil(out:find("listening", 1, true), case[1])
    end
  end)

  it("readable by others starts with a warning", function()
    local c = fixture.credentials()
    local path = fixture.write(c, "644")
    local server = t.start { args = { "--credentials", path } }
    finally(function() server:stop() end)
    assert.matches("accessible by group or others %(mode 0644%)",
      server:log())
    assert.equal(200, (server:json("GET", server.base .. "/envs", nil,
      fixture.token(c, "admin"))))
  end)

  it("with mode 600 starts without a warning", function()
    local server = fixture.start()
    finally(function() server:stop() end)
    assert.is_nil(server:log():find("accessible by group", 1, true))
  end)

  it("is reloaded on SIGHUP, and a bad one keeps the old", function()
    local server, old, path = fixture.start()
    finally(function() server:stop() end)
    local function envs(token)
      return (server:json("GET", server.base .. "/envs", nil,
        { ["X-Auth-Token"] = token }))
    end
    assert.equal(200, envs(old.tokens.admin))

    local new = fixture.credentials()
    t.write_file(path, new.file_text)
    server:signal("HUP")
    assert.is_true(wait_for_log(server, "credentials reloaded from " .. path))
    assert.equal(401, envs(old.tokens.admin))
    assert.equal(200, envs(new.tokens.admin))

    local secret = "tok-" .. fixture.random_hex(16)
    t.write_file(path, '{"tokens":[{"name":"x","token":"' .. secret ..
      '","project_id":"p1","permissions":["all"]}]}')
    server:signal("HUP")
    assert.is_true(wait_for_log(server, "credentials reload failed"))
    local log = server:log()
    assert.matches("the previous ones stay: credentials file " ..
      path:gsub("%p", "%%%0") .. ": tokens%[0%]: unknown permission \"all\"",
      log)
    assert.is_nil(log:find(secret, 1, true))
    assert.equal(200, envs(new.tokens.admin))
    assert.equal(401, envs(secret))

    os.remove(path)
    server:signal("HUP")
    t.sleep(0.3)
    assert.is_true(wait_for_log(server, "cannot open credentials file"))
    assert.equal(200, envs(new.tokens.admin))
  end)
end)

describe("secrets", function()
  it("never reach the log, the answers or the help", function()
    local server, creds, path = fixture.start {
      args = { "--log-level", "debug" } }
    local answers = {}
    local function keep(status, body, headers, text)
      answers[#answers + 1] = text or ""
      return status
    end
    -- Accepted and rejected tokens, signed requests, bad signatures.
    for name in pairs(creds.tokens) do
      keep(server:json("GET", server.base .. "/envs", nil,
        fixture.token(creds, name)))
      keep(server:json("POST", server.base .. "/envs",
        { name = "s_" .. name:gsub("%W", "_") }, fixture.token(creds, name)))
    end
    local signatures = {}
    for _, key in pairs(creds.keys) do
      local req = sign.request { ak = key.ak, sk = key.sk, method = "POST",
        target = server.base .. "/apis/publish?action=online",
        headers = { { "Host", "127.0.0.1" } },
        body = '{"apis":["nope"],"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID"}' }
      signatures[#signatures + 1] = req.signature
      keep(sign.send(server, req))
      local tampered = sign.copy(req)
      tampered.body = tampered.body .. " "
      keep(sign.send(server, tampered))
    end
    server:signal("HUP")
    assert.is_true(wait_for_log(server, "credentials reloaded"))
    assert.equal(0, server:stop())

    local _, help = run_server { "--credentials", path, "--help" }
    local texts = { log = server:log(), help = help,
                    answers = table.concat(answers, "\n") }
    assert.matches("DEBUG", texts.log:upper())
    for where, text in pairs(texts) do
      for name, token in pairs(creds.tokens) do
        assert.is_nil(text:find(token, 1, true), "token " .. name .. " in " ..
          where)
      end
      for name, key in pairs(creds.keys) do
        assert.is_nil(text:find(key.sk, 1, true), "SK " .. name .. " in " ..
          where)
      end
      for _, signature in ipairs(signatures) do
        assert.is_nil(text:find(signature, 1, true), "signature in " .. where)
      end
    end
  end)
end)

describe("caller", function()
  it("reaches the policy as ctx.caller for tokens and keys", function()
    local dir = t.tmpdir()
    local policy = dir .. "/policy.lua"
    t.write_file(policy, [[
local policy = {}
function policy.authorize(api, env, ctx)
  if ctx.caller == "only-publish" then return true end
  return false, "caller " .. tostring(ctx.caller)
end
return policy
]])
    local server, creds = fixture.start { args = { "--policy", policy } }
    finally(function() server:stop() end)
    local admin = fixture.token(creds, "admin")
    local _, group = server:json("POST", server.base .. "/api-groups",
      { name = "caller_group" }, admin)
    local _, api = server:json("POST", server.base .. "/apis", {
      group_id = group.id, name = "caller_api", type = 1,
      req_protocol = "HTTPS", req_method = "GET", req_uri = "/caller",
      auth_type = "NONE", backend_type = "MOCK",
      mock_info = { result_content = "ok" } }, admin)
    local body = { apis = { api.id }, env_id = t.RELEASE }

    local status, answer = server:batch("online", body,
      fixture.token(creds, "only-publish"))
    assert.equal(200, status)
    assert.equal(1, #answer.success)

    status, answer = server:batch("online", body, admin)
    assert.equal(200, status)
    assert.equal("caller admin", answer.failure[1].error_msg)

    local key = creds.keys["sdk-p1"]
    status, answer = sign.send(server, sign.request {
      ak = key.ak, sk = key.sk, method = "POST",
      target = server.base .. "/apis/publish?action=online",
      headers = { { "Host", "127.0.0.1" } }, body = t.json.encode(body) })
    assert.equal(200, status)
    assert.equal("caller " .. key.ak, answer.failure[1].error_msg)
    assert.matches("batch online by " .. key.ak, server:log(), 1, true)
  end)
end)

describe("development mode", function()
  it("accepts any token and unchecked keys, and says so once", function()
    local server = t.start {}
    finally(function() server:stop() end)
    assert.equal(1, count(server:log(), "development mode"))
    assert.equal(200, (server:json("GET", server.base .. "/envs", nil,
      { ["X-Auth-Token"] = "anything" })))
    assert.equal(401, (server:json("GET", server.base .. "/envs", nil,
      { ["X-Auth-Token"] = "" })))
    local status = sign.send(server, { method = "GET",
      target = "/v2/any/apigw/instances/i1/envs",
      headers = { { "Host", "127.0.0.1" },
        { "Authorization", "SDK-HMAC-SHA256 Access=AK, " ..
          "SignedHeaders=x-sdk-date, Signature=" .. string.rep("0", 64) } } })
    assert.equal(404, status)
  end)

  it("rejects a non-loopback address", function()
    for _, listen in ipairs { "0.0.0.0:0", "[::]:0", "192.0.2.1:0",
                              "[::ffff:10.0.0.1]:0" } do
      local status, out = run_server { "--listen", listen }
      assert.equal(2, status, listen .. ": " .. out)
      assert.matches("refusing to listen on " .. listen:gsub("%p", "%%%0") ..
        " in development mode", out)
      assert.matches("--allow-remote", out, 1, true)
    end
  end)

  it("lets --allow-remote or --credentials pass the check", function()
    -- 192.0.2.1 (TEST-NET-1) is on no interface here, so the listener
    -- fails after the check and nothing is ever exposed.
    local status, out = run_server { "--listen", "192.0.2.1:0",
                                     "--allow-remote" }
    assert.equal(1, status, out)
    assert.matches("cannot listen on 192.0.2.1:0", out, 1, true)
    local c = fixture.credentials()
    status, out = run_server { "--listen", "192.0.2.1:0",
                               "--credentials", fixture.write(c) }
    assert.equal(1, status, out)
    assert.matches("cannot listen on 192.0.2.1:0", out, 1, true)
  end)

  it("listens on any loopback address", function()
    for _, listen in ipairs { "127.0.0.2:0", "[::1]:0",
                              "[0:0:0:0:0:0:0:1]:0" } do
      local server = t.start { args = { "--listen", listen } }
      assert.equal(0, server:stop(), listen)
    end
  end)
end)
