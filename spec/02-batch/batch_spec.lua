-- The batch call POST …/apis/publish?action=online|offline: the request-wide
-- checks in their order, the per-API steps and the answer shapes.
local t = require "apig_test"
local json = t.json

local RELEASE = t.RELEASE

-- Imports a generated OpenAPI document with `count` operations and returns
-- the new APIs' ids in order, and the group id.
local function make_apis(server, count, prefix)
  local paths = {}
  for i = 1, count do
    paths["/" .. prefix .. "/" .. i] = {
      get = { operationId = prefix .. "_" .. i, responses = {} } }
  end
  local doc = { openapi = "3.0.0", paths = paths,
                info = { title = prefix .. " catalogue", version = "1" } }
  local status, answer = server:import_json(json.encode(doc))
  assert(status == 200, "import failed: " .. tostring(status))
  local ids = {}
  for _, item in ipairs(answer.success) do
    ids[tonumber(item.path:match("(%d+)$"))] = item.id
  end
  return ids, answer.group_id
end

local function versions(server, api_id, env_id)
  local target = server.base .. "/apis/publish/" .. api_id .. "?limit=500"
  if env_id then target = target .. "&env_id=" .. env_id end
  local status, body = server:json("GET", target)
  assert.equal(200, status)
  return body.api_versions, body.total
end

local function keys_of(object)
  local keys = {}
  for key in pairs(object) do keys[#keys + 1] = key end
  table.sort(keys)
  return table.concat(keys, ",")
end

local function assert_error(status, body, want_status, want_code)
  assert.equal(want_status, status)
  assert.is_table(body)
  assert.equal(want_code, body.error_code)
  assert.is_string(body.error_msg)
end

describe("batch publish", function()
  local server, ids, group_id, test_env

  setup(function()
    server = t.start { instances = { "p1:i1" } }
    ids, group_id = make_apis(server, 1000, "a")
    test_env = server:create_env("TEST")
  end)

  teardown(function() server:stop() end)

  describe("request checks", function()
    it("answers 405 with Allow: POST for GET and PUT", function()
      for _, method in ipairs { "GET", "PUT" } do
        local status, body, headers = server:json(method,
          server.base .. "/apis/publish?action=online",
          { apis = { ids[1] }, env_id = RELEASE })
        assert_error(status, body, 405, "APIG.2012")
        assert.equal("POST", headers["allow"])
      end
      local list = versions(server, ids[1])
      assert.equal(0, #list)
    end)

    it("answers 401 APIG.1000 without a token", function()
      local status, body = server:batch("online",
        { apis = { ids[1] }, env_id = RELEASE }, { token = false })
      assert_error(status, body, 401, "APIG.1000")
    end)

    it("rejects two X-Auth-Token headers", function()
      local request = "POST " .. server.base ..
        "/apis/publish?action=online HTTP/1.1\r\nHost: x\r\n" ..
        "X-Auth-Token: a\r\nx-auth-token: a\r\nContent-Length: 2\r\n\r\n{}"
      local answer = server:raw(request, 2)
      assert.matches("^HTTP/1.1 401", answer)
      assert.matches('"APIG.1002"', answer)
    end)

    it("matches header names case-insensitively", function()
      for _, name in ipairs { "x-auth-token", "X-AUTH-TOKEN" } do
        local status = server:batch("offline",
          { apis = { "nope" }, env_id = RELEASE }, { [name] = "good" })
        assert.equal(200, status)
      end
    end)

    it("answers 404 APIG.3030 for an unknown instance", function()
      for _, instance in ipairs { "i2", "i%2F1" } do
        local status, body = server:json("POST",
          "/v2/p1/apigw/instances/" .. instance ..
          "/apis/publish?action=online", { apis = { "x" }, env_id = RELEASE })
        assert_error(status, body, 404, "APIG.3030")
      end
    end)

    it("treats odd path shapes as unknown paths", function()
      for _, suffix in ipairs { "/apis/publish/", "//apis/publish",
                                "/apis/../apis/publish", "/apis/./publish" } do
        local status, body = server:json("POST", server.base .. suffix ..
          "?action=online", { apis = { ids[1] }, env_id = RELEASE })
        assert_error(status, body, 404, "APIG.2012")
      end
    end)

    it("requires action exactly once and exactly online or offline",
      function()
        local queries = { "", "?action=online&action=offline",
          "?action=offline&action=online", "?action=ONLINE",
          "?Action=online", "?action=", "?action=online%00",
          "?action=online;x=1", "?action" }
        for _, query in ipairs(queries) do
          local status, body = server:json("POST",
            server.base .. "/apis/publish" .. query,
            { apis = { ids[1] }, env_id = RELEASE })
          assert_error(status, body, 400, "APIG.2011")
          assert.equal('Invalid parameter value: parameter action should ' ..
            'be "online" or "offline"', body.error_msg)
        end
        assert.equal(0, #versions(server, ids[1]))
      end)

    it("decodes the action and ignores other parameters", function()
      local status, body = server:json("POST", server.base ..
        "/apis/publish?x=1&action=onl%69ne&y=2",
        { apis = { ids[2] }, env_id = RELEASE })
      assert.equal(200, status)
      assert.equal(1, #body.success)
      server:batch("offline", { apis = { ids[2] }, env_id = RELEASE })
    end)

    it("rejects bodies that are not one JSON object", function()
      local bodies = { "null", "[]", '"x"', "123", "",
        '{"apis":["a"],"env_id":"x"}xyz', '{"env_id":"x"}}}}}',
        '{"env_id":"x"}{"env_id":"y"}', '{"apis":' .. ("["):rep(100000),
        '{"env_id":"a","env_id":"b"}', '{"apis":["a1\\u0000junk"]}',
        '{"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID\\u0000"}' }
      for _, text in ipairs(bodies) do
        local status, body = server:json("POST",
          server.base .. "/apis/publish?action=online", text)
        assert_error(status, body, 400, "APIG.2000")
        assert.matches("^Parameter error: Serialization error: ",
          body.error_msg)
      end
    end)

    it("rejects bad escapes and invalid UTF-8 in strings", function()
      local remarks = { '"\\uX000"', '"\\uD800"', '"\\uDC00x"', '"\xC3\x28"',
        '"\xED\xA0\x80"', '"\xC0\x80"', '"\xF5\x80\x80\x80"', '"\xFF"' }
      for _, remark in ipairs(remarks) do
        local text = '{"apis":["' .. ids[3] .. '"],"env_id":"' .. RELEASE ..
          '","remark":' .. remark .. '}'
        local status, body = server:json("POST",
          server.base .. "/apis/publish?action=online", text)
        assert_error(status, body, 400, "APIG.2000")
      end
      assert.equal(0, #versions(server, ids[3]))
    end)

    it("checks the type of each known field", function()
      local cases = {
        { { apis = "a1", env_id = RELEASE }, "apis" },
        { { apis = { 1, 2 }, env_id = RELEASE }, "apis" },
        { '{"apis":[null],"env_id":"' .. RELEASE .. '"}', "apis" },
        { { apis = { { "a1" } }, env_id = RELEASE }, "apis" },
        { { apis = { "a1" }, env_id = 5 }, "env_id" },
        { { apis = { "a1" }, env_id = RELEASE, remark = true }, "remark" },
        { { group_id = 7, env_id = RELEASE }, "group_id" },
      }
      for _, case in ipairs(cases) do
        local status, body = server:batch("online", case[1])
        assert_error(status, body, 400, "APIG.2011")
        assert.equal("Invalid parameter value,parameterName:" .. case[2] ..
          ". Please refer to the support documentation", body.error_msg)
      end
    end)

    it("ignores unknown keys and matches keys case-sensitively", function()
      local status, body = server:batch("offline",
        { apis = { "nope" }, env_id = RELEASE, Apis = 5, extra = { 1 } })
      assert.equal(200, status)
      assert.equal(1, #body.failure)
    end)

    it("requires env_id", function()
      local status, body = server:batch("online", { apis = { ids[1] } })
      assert_error(status, body, 400, "APIG.2001")
      assert.equal("The request parameters must be specified," ..
        "parameterName:env_id. Please refer to the support documentation",
        body.error_msg)
    end)

    it("requires apis or group_id", function()
      for _, request in ipairs { '{"apis":[],"env_id":"' .. RELEASE .. '"}',
                                 { env_id = RELEASE } } do
        local status, body = server:batch("online", request)
        assert_error(status, body, 400, "APIG.2001")
        assert.matches("parameterName:apis", body.error_msg)
      end
    end)

    it("rejects 1001 ids and changes nothing", function()
      local list = {}
      for i = 1, 1000 do list[i] = ids[i] end
      list[1001] = "nope"
      local status, body = server:batch("online",
        { apis = list, env_id = RELEASE })
      assert_error(status, body, 400, "APIG.2011")
      assert.matches("parameterName:apis", body.error_msg)
      local _, all = server:json("GET", server.base ..
        "/apis?env_id=" .. RELEASE)
      assert.equal(0, all.total)
    end)

    it("rejects 300 000 ids before any per-id work", function()
      local parts = {}
      for i = 1, 300000 do parts[i] = '""' end
      local text = '{"apis":[' .. table.concat(parts, ",") ..
        '],"env_id":"' .. RELEASE .. '"}'
      local start = t.now()
      local status, body = server:json("POST",
        server.base .. "/apis/publish?action=online", text)
      assert_error(status, body, 400, "APIG.2011")
      print(("300 000 ids rejected in %.1f ms"):format(
        (t.now() - start) * 1000))
    end)

    it("counts the remark in characters", function()
      local cases = {
        { ("发"):rep(255), 200 }, { ("a"):rep(255), 200 },
        { ("a"):rep(254) .. "😀", 200 },
        { ("发"):rep(256), 400 }, { ("a"):rep(256), 400 } }
      for _, case in ipairs(cases) do
        local status, body = server:batch("online",
          { apis = { ids[4] }, env_id = test_env, remark = case[1] })
        assert.equal(case[2], status)
        if case[2] == 200 then
          assert.equal(case[1], body.success[1].remark)
          local list = versions(server, ids[4], test_env)
          assert.equal(case[1], list[1].remark)
        else
          assert.equal("APIG.2011", body.error_code)
          assert.matches("parameterName:remark", body.error_msg)
        end
      end
      assert.equal(3, #versions(server, ids[4], test_env))
      server:batch("offline", { apis = { ids[4] }, env_id = test_env })
    end)

    it("answers 404 for an unknown environment or group", function()
      local status, body = server:batch("online",
        { apis = { ids[1] }, env_id = "nope" })
      assert_error(status, body, 404, "APIG.3003")
      assert.equal("Environment nope does not exist", body.error_msg)
      status, body = server:batch("online",
        { group_id = "nogroup", env_id = RELEASE })
      assert_error(status, body, 404, "APIG.3001")
      assert.equal("API group nogroup does not exist", body.error_msg)
    end)
  end)

  describe("per-API results", function()
    it("keeps one bad item from spoiling the batch", function()
      local a1, a2, a3, a4 = ids[11], ids[12], ids[13], ids[14]
      local status, body = server:batch("online",
        { apis = { a1, a2 }, env_id = test_env })
      assert.equal(200, status)
      status, body = server:batch("online",
        { apis = { a1, "nope", a2, a3 }, env_id = RELEASE, remark = "c01" })
      assert.equal(200, status)
      assert.equal(3, #body.success)
      assert.equal(1, #body.failure)
      for i, api in ipairs { a1, a2, a3 } do
        local item = body.success[i]
        assert.equal(api, item.api_id)
        assert.equal("api_id,api_name,env_id,publish_id,publish_time," ..
          "remark,version_id", keys_of(item))
        assert.equal("c01", item.remark)
        assert.equal(RELEASE, item.env_id)
        assert.matches("^%x+$", item.version_id)
        assert.equal(32, #item.version_id)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z$",
          item.publish_time)
      end
      assert.equal("nope", body.failure[1].api_id)
      assert.is_nil(body.failure[1].api_name)
      assert.equal("APIG.3002", body.failure[1].error_code)
      assert.equal("Api nope not found", body.failure[1].error_msg)
      assert.equal(1, #versions(server, a1, RELEASE))

      -- Take offline from TEST: a4 was never there.
      status, body = server:batch("offline",
        { apis = { a1, a4, "nope" }, env_id = test_env })
      assert.equal(200, status)
      assert.equal(1, #body.success)
      assert.equal(a1, body.success[1].api_id)
      assert.equal("api_id,api_name,env_id,version_id",
        keys_of(body.success[1]))
      assert.equal("APIG.3015", body.failure[1].error_code)
      assert.equal(a4, body.failure[1].api_id)
      assert.is_string(body.failure[1].api_name)
      assert.equal("APIG.3002", body.failure[2].error_code)
      local release = versions(server, a1, RELEASE)
      assert.equal(1, #release)
      assert.equal(1, release[1].status)

      -- The same again: everything fails, never a 500.
      status, body = server:batch("offline",
        { apis = { a1, a4, "nope" }, env_id = test_env })
      assert.equal(200, status)
      assert.equal(0, #body.success)
      assert.equal(3, #body.failure)
      assert.equal("APIG.3015", body.failure[1].error_code)
    end)

    it("processes a duplicate once and ids case-sensitively", function()
      local a = ids[21]
      local status, body = server:batch("online",
        { apis = { a, a }, env_id = RELEASE })
      assert.equal(200, status)
      assert.equal(1, #body.success)
      assert.equal(0, #body.failure)
      assert.equal(1, #versions(server, a))
      status, body = server:batch("online",
        { apis = { a, a:upper() }, env_id = RELEASE })
      assert.equal(1, #body.success)
      assert.equal("APIG.3002", body.failure[1].error_code)
    end)

    it("accepts 1000 ids, and 1000 copies of one id", function()
      local status, body = server:batch("online",
        { apis = ids, env_id = test_env })
      assert.equal(200, status)
      assert.equal(1000, #body.success + #body.failure)
      assert.equal(1000, #body.success)
      local copies = {}
      for i = 1, 1000 do copies[i] = ids[5] end
      status, body = server:batch("online",
        { apis = copies, env_id = RELEASE })
      assert.equal(200, status)
      assert.equal(1, #body.success)
      assert.equal(1, #versions(server, ids[5], RELEASE))
      status, body = server:batch("offline", { apis = ids, env_id = test_env })
      assert.equal(1000, #body.success)
    end)

    it("acts on every API of a group", function()
      local group_ids, group = make_apis(server, 3, "g")
      local status, body = server:batch("online",
        { group_id = group, env_id = test_env })
      assert.equal(200, status)
      assert.equal(3, #body.success)
      -- apis plus group_id: only listed APIs of that group count.
      status, body = server:batch("offline",
        { group_id = group, apis = { group_ids[1], ids[1] },
          env_id = test_env })
      assert.equal(1, #body.success)
      assert.equal(group_ids[1], body.success[1].api_id)
      assert.equal("APIG.3002", body.failure[1].error_code)
      assert.equal(ids[1], body.failure[1].api_id)
      assert.equal("a_1", body.failure[1].api_name)
    end)
  end)

  describe("versions and publications", function()
    it("keeps publish_id while online and mints one after offline",
      function()
        local a = ids[31]
        local _, first = server:batch("online",
          { apis = { a }, env_id = RELEASE, remark = "v1" })
        local _, second = server:batch("online",
          { apis = { a }, env_id = RELEASE, remark = "v2" })
        assert.equal(first.success[1].publish_id,
          second.success[1].publish_id)
        assert.are_not.equal(first.success[1].version_id,
          second.success[1].version_id)
        local list = versions(server, a, RELEASE)
        assert.equal(2, #list)
        assert.equal(second.success[1].version_id, list[1].version_id)
        assert.equal(1, list[1].status)
        assert.equal(2, list[2].status)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$",
          list[1].publish_time)
        assert.matches("^%d+$", list[1].version_no)
        assert.equal(14, #list[1].version_no)
        server:batch("offline", { apis = { a }, env_id = RELEASE })
        list = versions(server, a, RELEASE)
        assert.equal(2, #list)
        assert.equal(2, list[1].status)
        assert.equal(2, list[2].status)
        local _, third = server:batch("online",
          { apis = { a }, env_id = RELEASE })
        assert.are_not.equal(first.success[1].publish_id,
          third.success[1].publish_id)
      end)

    it("keeps 10 versions and drops the oldest", function()
      local a = ids[41]
      local made = {}
      for i = 1, 11 do
        local _, body = server:batch("online",
          { apis = { a }, env_id = RELEASE, remark = "r" .. i })
        made[i] = body.success[1].version_id
      end
      local list = versions(server, a, RELEASE)
      assert.equal(10, #list)
      assert.equal(made[11], list[1].version_id)
      assert.equal(made[2], list[10].version_id)
      local status, body = server:json("GET", server.base ..
        "/apis/versions/" .. made[1])
      assert.equal(404, status)
      assert.equal("APIG.3022", body.error_code)
    end)

    it("shows the publications of an API newest first", function()
      local a = ids[51]
      server:batch("online", { apis = { a }, env_id = RELEASE })
      t.sleep(1.1)
      local _, pub = server:batch("online", { apis = { a }, env_id = test_env })
      local status, api = server:json("GET", server.base .. "/apis/" .. a)
      assert.equal(200, status)
      assert.equal(test_env .. "|" .. RELEASE, api.run_env_id)
      assert.equal("TEST|RELEASE", api.run_env_name)
      local first_id = api.publish_id:match("^(%x+)|")
      assert.equal(pub.success[1].publish_id, first_id)
      assert.matches("^%S+Z|%S+Z$", api.publish_time)
      assert.not_matches("%.", api.publish_time)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$",
        api.register_time)
    end)

    it("lists APIs by environment, group and name", function()
      local _, in_test = server:json("GET", server.base ..
        "/apis?env_id=" .. test_env .. "&limit=500")
      for _, api in ipairs(in_test.apis) do
        assert.matches(test_env, api.run_env_id, 1, true)
      end
      local _, by_group = server:json("GET", server.base ..
        "/apis?group_id=" .. group_id .. "&limit=1")
      assert.equal(1000, by_group.total)
      assert.equal(1, by_group.size)
      local _, by_name = server:json("GET", server.base ..
        "/apis?name=a_77&precise_search=name")
      assert.equal(1, by_name.total)
      local _, page = server:json("GET", server.base ..
        "/apis?group_id=" .. group_id .. "&offset=999&limit=600")
      assert.equal(1, page.size)
      assert.equal(1000, page.total)
      local _, past = server:json("GET", server.base ..
        "/apis?offset=5000")
      assert.equal(0, past.size)
      local _, default = server:json("GET", server.base ..
        "/apis?limit=0&offset=-4")
      assert.equal(20, default.size)
      local _, huge = server:json("GET", server.base ..
        "/apis?limit=99999999999999999999&offset=-99999999999999999999")
      assert.equal(500, huge.size)
      local status, bad = server:json("GET", server.base .. "/apis?limit=x")
      assert_error(status, bad, 400, "APIG.2012")
    end)

    it("puts a request id and JSON type on every answer", function()
      local _, _, headers = server:request("GET", server.base .. "/envs")
      assert.matches("^%x+$", headers["x-request-id"])
      assert.equal(32, #headers["x-request-id"])
      assert.equal("application/json;charset=UTF-8", headers["content-type"])
      local _, _, again = server:request("GET", "/nowhere")
      assert.are_not.equal(headers["x-request-id"], again["x-request-id"])
    end)
  end)

  describe("restart", function()
    it("keeps publications and versions", function()
      local a = ids[61]
      local _, body = server:batch("online",
        { apis = { a }, env_id = RELEASE, remark = "kept" })
      local before = versions(server, a)
      local _, api_before = server:json("GET", server.base .. "/apis/" .. a)
      assert.equal(0, server:stop())
      server:restart()
      local after = versions(server, a)
      assert.same(before, after)
      local _, api_after = server:json("GET", server.base .. "/apis/" .. a)
      assert.same(api_before, api_after)
      assert.equal(body.success[1].version_id, after[1].version_id)
    end)
  end)
end)
