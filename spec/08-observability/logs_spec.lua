-- Log lines: one per event, valid JSON in JSON format, requests at debug
-- level with their peer, and never a token, secret key or signature.
local t = require "apig_test"
local cjson = t.json

local TOKEN = "tok-5f2a9c1e7b3d4068a1c2e3f4a5b6c7d8"
local SK = "sk-9e8d7c6b5a49382716a5b4c3d2e1f0ab"
local SIGNATURE = ("ab12"):rep(16)

local function credentials_file(dir)
  local path = dir .. "/credentials.json"
  t.write_file(path, cjson.encode {
    tokens = { { name = "ops-token", token = TOKEN, project_id = "p1",
                 permissions = { "read", "publish", "offline", "manage" } } },
    access_keys = { { name = "sdk-key", ak = "AKLOGTEST", sk = SK,
                      project_id = "p1",
                      permissions = { "read", "publish", "offline",
                                      "manage" } } },
  })
  os.execute("chmod 600 " .. t.shell_quote(path))
  return path
end

-- Sends requests that carry every kind of secret, accepted and rejected.
local function send_secrets(server)
  local date = os.date("!%Y%m%dT%H%M%SZ")
  local signed = {
    ["Authorization"] = "SDK-HMAC-SHA256 Access=AKLOGTEST, " ..
      "SignedHeaders=x-sdk-date, Signature=" .. SIGNATURE,
    ["X-Sdk-Date"] = date,
  }
  server:request("GET", server.base .. "/envs", nil,
    { ["X-Auth-Token"] = TOKEN })
  server:request("GET", server.base .. "/envs", nil,
    { ["X-Auth-Token"] = TOKEN .. "x" })
  server:request("GET", server.base .. "/envs", nil, signed)
  server:batch("online", { apis = { ("0"):rep(32) }, env_id = t.RELEASE },
    { ["X-Auth-Token"] = TOKEN })
  server:batch("online", { apis = { ("0"):rep(32) }, env_id = t.RELEASE },
    signed)
  -- A request with both headers twice is rejected before any check.
  server:raw("GET " .. server.base .. "/envs HTTP/1.1\r\nHost: x\r\n" ..
    "X-Auth-Token: " .. TOKEN .. "\r\nX-Auth-Token: " .. TOKEN .. "\r\n" ..
    "Connection: close\r\n\r\n", 2)
end

local function assert_no_secret(log)
  assert.is_nil(log:find(TOKEN, 1, true), "the log holds the token")
  assert.is_nil(log:find(SK, 1, true), "the log holds the secret key")
  assert.is_nil(log:find(SIGNATURE, 1, true), "the log holds the signature")
end

describe("logs in JSON format", function()
  local server

  setup(function()
    local dir = t.tmpdir()
    server = t.start { instances = { "p1:i1" },
      args = { "--credentials", credentials_file(dir), "--log-level",
               "debug", "--log-format", "json" } }
    send_secrets(server)
    server:request("GET", server.base .. "/api-groups", nil,
      { ["X-Auth-Token"] = TOKEN })
    server:signal("USR1")
    t.sleep(0.3)
    server:stop()
  end)

  it("writes one valid JSON object per line", function()
    local count = 0
    for line in server:log():gmatch("([^\n]+)") do
      local event = cjson.decode(line)
      assert.is_table(event, "not JSON: " .. line)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z$", event.time)
      assert.is_truthy(({ debug = 1, info = 1, warn = 1, error = 1 })
        [event.level], line)
      assert.is_string(event.message)
      count = count + 1
    end
    assert.is_true(count >= 8)
  end)

  it("logs each request with method, path, status, time and peer",
    function()
      local found
      for line in server:log():gmatch("([^\n]+)") do
        local event = cjson.decode(line)
        if event.message:find("^GET /v2/p1/apigw/instances/i1/api%-groups ")
        then
          found = event
        end
      end
      assert.is_table(found, "no log line for GET …/api-groups")
      assert.equal("debug", found.level)
      assert.matches("^%x+$", found.request_id)
      assert.equal(32, #found.request_id)
      assert.matches(" 200 [%d.]+ ms from 127%.0%.0%.1:%d+$", found.message)
    end)

  it("logs start, snapshot and stop", function()
    local log = server:log()
    assert.matches("listening on http://127%.0%.0%.1:", log)
    assert.matches("snapshot", log)
    assert.matches("\"level\":\"info\"", log)
  end)

  it("never holds a token, secret key or signature", function()
    assert_no_secret(server:log())
  end)
end)

describe("logs in text format", function()
  it("never holds a secret in development mode either", function()
    local server = t.start { instances = { "p1:i1" },
      args = { "--log-level", "debug", "--log-format", "text" } }
    send_secrets(server)
    server:stop()
    local log = server:log()
    assert_no_secret(log)
    for line in log:gmatch("([^\n]+)") do
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%S+Z (%a+)%s+", line)
    end
    assert.matches("request_id=%x+ GET /v2/p1/apigw/instances/i1/envs 200",
      log)
  end)
end)
