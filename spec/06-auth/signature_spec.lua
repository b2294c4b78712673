-- SDK-HMAC-SHA256 signatures end to end: a signing client written from the
-- algorithm talks to apig-server over loopback.

local t = require "apig_test"
local sign = require "apig_sign"
local fixture = require "apig_auth_fixture"

local function date_vector(method, target, headers, signed, body)
  local date
  for _, header in ipairs(headers) do
    if header[1] == "X-Sdk-Date" then date = header[2] end
  end
  return sign.signature("SecretKey", date, sign.canonical_request {
    method = method, target = target, headers = headers, signed = signed,
    body = body })
end

describe("signing client", function()
  -- Published vectors for AK "AccessKey", SK "SecretKey": a client that
  -- reproduces them signs as the official SDKs do.
  it("matches the GET vector", function()
    assert.equal(
      "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
      date_vector("GET", "/path?limit=1",
        { { "X-Sdk-Date", "20060102T150405Z" } }, { "x-sdk-date" }))
  end)

  it("matches the POST vector with a trailing newline", function()
    assert.equal(
      "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59",
      date_vector("POST", "/path?key=value",
        { { "X-Sdk-Date", "20060102T150405Z" } }, { "x-sdk-date" },
        '{"Name":"test","Id":1}\n'))
  end)

  it("matches the vectors that sign host", function()
    local headers = { { "Host", "service.endpoint.myhuaweicloud.com" },
                      { "X-Sdk-Date", "20200608T023900Z" } }
    assert.equal(
      "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842",
      date_vector("GET", "/resources?size=1", headers,
        { "host", "x-sdk-date" }))
    assert.equal(
      "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f",
      date_vector("POST", "/resources?size=1", headers,
        { "host", "x-sdk-date" }, '{"name":"test","id":1}'))
  end)

  it("encodes the path per segment and sorts the query", function()
    assert.equal("/a%20b/c/d/", sign.canonical_uri("/a%20b/c%2Fd"))
    assert.equal("a=1&a=2&b=%2F&c=&d=%E4%B8%AD",
      sign.canonical_query("d=%e4%b8%ad&b=%2f&a=2&c&a=1"))
  end)
end)

describe("signed requests", function()
  local server, creds, key, host

  setup(function()
    server, creds = fixture.start()
    key = creds.keys["sdk-p1"]
    host = "127.0.0.1:" .. server.port
  end)
  teardown(function() server:stop() end)

  -- Signs with the p1 access key; extra fields of r pass to sign.request.
  local function signed(r)
    r.ak = r.ak or key.ak
    r.sk = r.sk or key.sk
    r.headers = r.headers or { { "Host", host } }
    return sign.request(r)
  end

  local function admin_json(method, path, body)
    return server:json(method, server.base .. path, body,
      fixture.token(creds, "admin"))
  end

  local function group_count()
    local status, body = admin_json("GET", "/api-groups")
    assert.equal(200, status)
    return body.total
  end

  local function assert_signature_error(status, body, headers, message)
    assert.equal(401, status)
    assert.equal("APIG.0301", body.error_code)
    assert.equal(message or
      "Incorrect IAM authentication information: verify aksk signature fail",
      body.error_msg)
    assert.equal(headers["x-request-id"], body.request_id)
  end

  describe("pass", function()
    it("for a GET with host signed", function()
      local status, body = sign.send(server, signed {
        method = "GET", target = server.base .. "/envs",
        signed = { "host", "x-sdk-date" } })
      assert.equal(200, status)
      assert.equal(1, body.total)
    end)

    it("for a GET with only x-sdk-date signed", function()
      local status = sign.send(server, signed {
        method = "GET", target = server.base .. "/envs",
        signed = { "x-sdk-date" } })
      assert.equal(200, status)
    end)

    it("for the Go SDK's header set", function()
      local status = sign.send(server, signed {
        method = "GET", target = server.base .. "/api-groups?limit=5",
        headers = { { "Host", host },
                    { "User-Agent", "huaweicloud-usdk-go/3.0" },
                    { "X-Project-Id", "p1" } },
        signed = { "user-agent", "x-project-id", "x-sdk-date" } })
      assert.equal(200, status)
    end)

    it("for the Python SDK's header set with a body", function()
      local status, body = sign.send(server, signed {
        method = "POST", target = server.base .. "/api-groups",
        headers = { { "Host", host },
                    { "Content-Type", "application/json" },
                    { "User-Agent", "huaweicloud-usdk-python/3.0" },
                    { "X-Project-Id", "p1" } },
        signed = { "content-type", "host", "user-agent", "x-project-id",
                   "x-sdk-date" },
        body = '{"name":"python_sdk_group"}' })
      assert.equal(201, status)
      assert.equal("python_sdk_group", body.name)
    end)

    it("for a body with a trailing newline", function()
      local status, body = sign.send(server, signed {
        method = "POST", target = server.base .. "/api-groups",
        body = '{"name":"newline_group"}\n' })
      assert.equal(201, status)
      assert.equal("newline_group", body.name)
    end)

    it("for query strings that need encoding", function()
      local queries = {
        "name=a%20b&limit=5",
        "name=a%2Fb",
        "name=%E4%B8%AD%E6%96%87",
        "name=%e4%b8%ad",
        "tag=b&tag=a&tag=a",
        "x=a*b&flag&y=~z",
        "offset=0&limit=1&offset=0",
      }
      for _, query in ipairs(queries) do
        local status, body = sign.send(server, signed {
          method = "GET", target = server.base .. "/apis?" .. query })
        assert.equal(200, status, query .. ": " .. t.json.encode(body))
      end
    end)

    it("for a path with needless escapes", function()
      local target = "/v2/p1/apigw/instances/i1/api%2Dgroups"
      local status = sign.send(server, signed {
        method = "GET", target = target })
      assert.equal(200, status)
    end)

    it("with the query reordered after signing", function()
      local req = signed { method = "GET",
                           target = server.base .. "/apis?limit=2&offset=0" }
      req.target = server.base .. "/apis?offset=0&limit=2"
      assert.equal(200, (sign.send(server, req)))
    end)

    it("with an unsigned header changed after signing", function()
      local req = signed { method = "GET", target = server.base .. "/envs",
        headers = { { "Host", host }, { "User-Agent", "one" } },
        signed = { "host", "x-sdk-date" } }
      sign.set_header(req, "User-Agent", "two")
      assert.equal(200, (sign.send(server, req)))
    end)

    it("with X-Sdk-Content-Sha256 standing for the body hash", function()
      local req = signed {
        method = "POST", target = server.base .. "/api-groups",
        headers = { { "Host", host },
                    { "X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD" } },
        content_sha256 = "UNSIGNED-PAYLOAD",
        body = '{"name":"unsigned_payload_group"}' }
      assert.equal(201, (sign.send(server, req)))
    end)

    it("for a date 14 minutes off either way", function()
      for _, offset in ipairs { -14 * 60, 14 * 60 } do
        local status = sign.send(server, signed {
          method = "GET", target = server.base .. "/envs",
          date = sign.sdk_date(os.time() + offset) })
        assert.equal(200, status, "offset " .. offset)
      end
    end)
  end)

  describe("tampering", function()
    local group_id, base_req

    before_each(function()
      local status, group = admin_json("POST", "/api-groups",
        { name = "tamper_" .. fixture.random_hex(4) })
      assert.equal(201, status)
      group_id = group.id
      base_req = signed {
        method = "PUT", target = server.base .. "/api-groups/" .. group_id ..
          "?x=1",
        headers = { { "Host", host }, { "User-Agent", "signer" },
                    { "Content-Type", "application/json" } },
        signed = { "content-type", "host", "user-agent", "x-sdk-date" },
        body = '{"name":"renamed_' .. fixture.random_hex(4) .. '"}' }
    end)

    local function assert_rejected_unchanged(req)
      local before = group_count()
      local status, body, headers = sign.send(server, req)
      assert_signature_error(status, body, headers)
      assert.equal(before, group_count())
      local shown_status, shown = admin_json("GET", "/api-groups/" ..
        group_id)
      assert.equal(200, shown_status)
      assert.matches("^tamper_", shown.name)
    end

    it("of the method", function()
      local req = sign.copy(base_req)
      req.method = "DELETE"
      assert_rejected_unchanged(req)
    end)

    it("of the path", function()
      local status, other = admin_json("POST", "/api-groups",
        { name = "tamper_other_" .. fixture.random_hex(4) })
      assert.equal(201, status)
      local req = sign.copy(base_req)
      req.target = server.base .. "/api-groups/" .. other.id .. "?x=1"
      assert_rejected_unchanged(req)
    end)

    it("of the query", function()
      local req = sign.copy(base_req)
      req.target = req.target:gsub("x=1$", "x=2")
      assert_rejected_unchanged(req)
      req.target = req.target:gsub("%?x=2$", "")
      assert_rejected_unchanged(req)
    end)

    it("of a signed header", function()
      local req = sign.copy(base_req)
      sign.set_header(req, "User-Agent", "signer2")
      assert_rejected_unchanged(req)
      req = sign.copy(base_req)
      sign.set_header(req, "Host", "127.0.0.1:1")
      assert_rejected_unchanged(req)
    end)

    it("of one body byte", function()
      local req = sign.copy(base_req)
      local last = #req.body - 2
      local byte = req.body:byte(last)
      req.body = req.body:sub(1, last - 1) .. string.char(byte ~ 1) ..
        req.body:sub(last + 1)
      assert_rejected_unchanged(req)
      req = sign.copy(base_req)
      req.body = req.body .. "\n"
      assert_rejected_unchanged(req)
    end)

    it("of the date", function()
      local req = sign.copy(base_req)
      local date = sign.sdk_date(os.time() - 1)
      if date == sign.get_header(base_req, "X-Sdk-Date") then
        date = sign.sdk_date(os.time() + 1)
      end
      sign.set_header(req, "X-Sdk-Date", date)
      assert_rejected_unchanged(req)
    end)

    it("of the signature", function()
      local req = sign.copy(base_req)
      local auth = req.headers[#req.headers][2]
      local flipped = auth:sub(-1) == "0" and "1" or "0"
      req.headers[#req.headers][2] = auth:sub(1, -2) .. flipped
      assert_rejected_unchanged(req)
    end)

    it("leaves the untouched request valid", function()
      local status = sign.send(server, base_req)
      assert.equal(200, status)
    end)
  end)

  describe("rejects", function()
    it("a date 16 minutes off as expired", function()
      for _, offset in ipairs { -16 * 60, 16 * 60 } do
        local status, body, headers = sign.send(server, signed {
          method = "GET", target = server.base .. "/envs",
          date = sign.sdk_date(os.time() + offset) })
        assert_signature_error(status, body, headers,
          "Incorrect IAM authentication information: x-sdk-date expired")
      end
    end)

    it("an unknown access key", function()
      local status, body, headers = sign.send(server, signed {
        method = "GET", target = server.base .. "/envs",
        ak = "AKUNKNOWN0000000" })
      assert_signature_error(status, body, headers,
        "Incorrect IAM authentication information: ak not exist")
    end)

    it("the right AK with another SK", function()
      local status, body, headers = sign.send(server, signed {
        method = "GET", target = server.base .. "/envs",
        sk = creds.keys["sdk-p2"].sk })
      assert_signature_error(status, body, headers)
    end)

    it("a signature without x-sdk-date signed", function()
      local status, body, headers = sign.send(server, signed {
        method = "GET", target = server.base .. "/envs",
        signed = { "host" } })
      assert_signature_error(status, body, headers)
    end)

    it("a missing or malformed X-Sdk-Date", function()
      local req = signed { method = "GET", target = server.base .. "/envs" }
      local without = sign.copy(req)
      table.remove(without.headers, 2)
      local status, body, headers = sign.send(server, without)
      assert_signature_error(status, body, headers)
      for _, date in ipairs { "2020-06-08T02:39:00Z", "20200631T023900Z",
                              "20200608T023900", "" } do
        local bad = sign.copy(req)
        sign.set_header(bad, "X-Sdk-Date", date)
        status, body, headers = sign.send(server, bad)
        assert_signature_error(status, body, headers)
      end
    end)

    it("a malformed Authorization header", function()
      for _, value in ipairs {
        "SDK-HMAC-SHA1 Access=" .. key.ak .. ", SignedHeaders=x-sdk-date, " ..
          "Signature=" .. string.rep("0", 64),
        "SDK-HMAC-SHA256 Access=" .. key.ak .. ", SignedHeaders=x-sdk-date",
        "SDK-HMAC-SHA256 Access=" .. key.ak .. ", SignedHeaders=x-sdk-date, " ..
          "Signature=abc",
        "Bearer abc",
      } do
        local status, body, headers = sign.send(server, {
          method = "GET", target = server.base .. "/envs",
          headers = { { "Host", host }, { "X-Sdk-Date", sign.sdk_date() },
                      { "Authorization", value } } })
        assert.equal(401, status, value)
        assert.equal("APIG.0301", body.error_code, value)
        assert.equal(headers["x-request-id"], body.request_id)
      end
    end)
  end)
end)
