-- PUT and DELETE …/apis/{api_id}, and the filters and paging of GET …/apis.
local t = require "apig_test"
local c = require "api_checks"

describe("API calls", function()
  local server, base, group

  setup(function()
    server = t.start { instances = { "p1:i1" },
                       args = { "--group-api-quota", "600" } }
    base = server.base
    group = server:create_group("group_apis")
  end)
  teardown(function() server:stop() end)

  local function update(id, body)
    return server:json("PUT", base .. "/apis/" .. id, body)
  end

  describe("update", function()
    it("replaces the definition and keeps the register time", function()
      local id = server:create_api(group, "api_upd")
      local _, before = server:json("GET", base .. "/apis/" .. id)
      local status, api = update(id, c.api_body(group, "api_upd_v2", {
        req_method = "POST", req_uri = "/v2/{id}", remark = "second",
        mock_info = { result_content = "two" } }))
      assert.equal(200, status)
      assert.equal(id, api.id)
      assert.equal("api_upd_v2", api.name)
      assert.equal("POST", api.req_method)
      assert.equal("/v2/{id}", api.req_uri)
      assert.equal("two", api.mock_info.result_content)
      assert.is_true(c.fractional(api.update_time), api.update_time)
      assert.is_true(c.fractional(api.register_time), api.register_time)
      local shown
      status, shown = server:json("GET", base .. "/apis/" .. id)
      assert.equal(before.register_time, shown.register_time)
      assert.is_true(c.whole_seconds(shown.update_time))
      assert.equal("second", shown.remark)
    end)

    it("drops fields the new body leaves out", function()
      local _, created = server:json("POST", base .. "/apis",
        c.api_body(group, "api_drop", { remark = "gone soon" }))
      local status, api = update(created.id, c.api_body(group, "api_drop"))
      assert.equal(200, status)
      assert.is_nil(api.remark)
    end)

    it("never changes a published version", function()
      local id = server:create_api(group, "api_frozen")
      local _, published = server:batch("online",
        { apis = { id }, env_id = t.RELEASE })
      local version = published.success[1].version_id
      update(id, c.api_body(group, "api_frozen_edit",
        { mock_info = { result_content = "edited" } }))
      local status, frozen = server:json("GET", base .. "/apis/versions/" ..
        version)
      assert.equal(200, status)
      assert.equal("api_frozen", frozen.name)
      assert.equal("ok", frozen.mock_info.result_content)
      local runtime
      status, runtime = server:json("GET", base .. "/apis/runtime/" .. id)
      assert.equal(200, status)
      assert.equal("api_frozen", runtime.name)
      local shown
      status, shown = server:json("GET", base .. "/apis/" .. id)
      assert.equal("api_frozen_edit", shown.name)
      assert.equal(t.RELEASE, shown.run_env_id)
    end)

    it("moves an API to another group", function()
      local other = server:create_group("group_target")
      local id = server:create_api(group, "api_moving")
      local status, api = update(id, c.api_body(other, "api_moving"))
      assert.equal(200, status)
      assert.equal(other, api.group_id)
      assert.equal("group_target", api.group_name)
      local _, target = server:json("GET", base .. "/api-groups/" .. other)
      assert.equal(1, target.api_count)
      local _, page = server:json("GET", base .. "/apis?group_id=" .. other)
      assert.equal(1, page.total)
      assert.equal(id, page.apis[1].id)
    end)

    it("checks names and routes in the target group", function()
      local target = server:create_group("group_unique")
      server:create_api(target, "api_there", "/there")
      local id = server:create_api(group, "api_here", "/here")
      local before = c.state(server)
      local status, body = update(id, c.api_body(target, "api_there",
        { req_uri = "/elsewhere" }))
      c.is_error(status, body, 400, "APIG.3202")
      status, body = update(id, c.api_body(target, "api_other",
        { req_uri = "/there" }))
      c.is_error(status, body, 400, "APIG.3301")
      assert.equal("The API already exists,route:GET /there", body.error_msg)
      assert.equal(before, c.state(server))
      -- The API's own name and route do not conflict with itself.
      status = update(id, c.api_body(group, "api_here", { req_uri = "/here" }))
      assert.equal(200, status)
    end)

    it("applies the target group's quota", function()
      local small = t.start { instances = { "p1:i1" },
                              args = { "--group-api-quota", "1" } }
      local g1 = small:create_group("group_one")
      local g2 = small:create_group("group_two")
      local a1 = small:create_api(g1, "api_one")
      small:create_api(g2, "api_two")
      local status, body = small:json("PUT", small.base .. "/apis/" .. a1,
        c.api_body(g2, "api_one"))
      c.is_error(status, body, 403, "APIG.3125")
      -- Staying in its full group is allowed.
      status = small:json("PUT", small.base .. "/apis/" .. a1,
        c.api_body(g1, "api_one", { remark = "same group" }))
      assert.equal(200, status)
      small:stop()
    end)

    it("rejects invalid bodies without a change", function()
      local id = server:create_api(group, "api_invalid")
      local cases = {
        { c.api_body(group, "api_invalid", { name = false }), 400,
          "APIG.2011", "name" },
        { c.api_body(group, "ab"), 400, "APIG.2011", "name" },
        { c.api_body(group, "api_invalid", { type = 3 }), 400, "APIG.2011",
          "type" },
        { c.api_body(group, "api_invalid", { req_method = "FETCH" }), 400,
          "APIG.2011", "req_method" },
        { c.api_body(group, "api_invalid", { req_uri = "no-slash" }), 400,
          "APIG.2011", "req_uri" },
        { c.api_body(group, "api_invalid", { req_protocol = "FTP" }), 400,
          "APIG.2011", "req_protocol" },
        { c.api_body(group, "api_invalid", { auth_type = "KEY" }), 400,
          "APIG.2011", "auth_type" },
        { c.api_body(group, "api_invalid", { backend_type = "HTTP" }), 400,
          "APIG.2011", "backend_api" },
        { c.api_body(group, "api_invalid", { remark = ("x"):rep(256) }), 400,
          "APIG.2011", "remark" },
        { c.api_body(("f"):rep(32), "api_invalid"), 404, "APIG.3001" },
        { "{", 400, "APIG.2000" },
      }
      for _, field in ipairs { "group_id", "name", "type", "req_protocol",
                               "req_method", "req_uri", "auth_type",
                               "backend_type" } do
        local body = c.api_body(group, "api_invalid")
        body[field] = nil
        cases[#cases + 1] = { body, 400, "APIG.2001", field }
      end
      local before = c.state(server)
      for _, case in ipairs(cases) do
        local status, body = update(id, case[1])
        c.is_error(status, body, case[2], case[3])
        if case[4] then
          assert.matches("parameterName:" .. case[4], body.error_msg, 1, true)
        end
      end
      assert.equal(before, c.state(server))
    end)

    it("answers 404 APIG.3002 for an unknown API", function()
      local missing = ("b"):rep(32)
      local status, body = update(missing, c.api_body(group, "api_nobody"))
      c.is_error(status, body, 404, "APIG.3002")
      assert.equal("API " .. missing .. " does not exist", body.error_msg)
    end)
  end)

  describe("delete", function()
    it("deletes an API and its version history", function()
      local id = server:create_api(group, "api_del")
      local _, published = server:batch("online",
        { apis = { id }, env_id = t.RELEASE })
      local version = published.success[1].version_id
      server:batch("offline", { apis = { id }, env_id = t.RELEASE })
      local status, text = server:request("DELETE", base .. "/apis/" .. id)
      assert.equal(204, status)
      assert.equal("", text)
      local body
      status, body = server:json("GET", base .. "/apis/" .. id)
      c.is_error(status, body, 404, "APIG.3002")
      status, body = server:json("GET", base .. "/apis/versions/" .. version)
      c.is_error(status, body, 404, "APIG.3022")
      status, body = server:json("GET", base .. "/apis/publish/" .. id)
      c.is_error(status, body, 404, "APIG.3002")
      status, body = server:json("DELETE", base .. "/apis/" .. id)
      c.is_error(status, body, 404, "APIG.3002")
    end)

    it("refuses to delete a published API", function()
      local id = server:create_api(group, "api_pub_del")
      local env = server:create_env("env_del_api")
      server:batch("online", { apis = { id }, env_id = env })
      local before = c.state(server, { id })
      local status, body = server:json("DELETE", base .. "/apis/" .. id)
      c.is_error(status, body, 409, "APIG.3416")
      assert.equal(before, c.state(server, { id }))
    end)
  end)

  describe("list", function()
    local big, env

    -- 520 APIs in one group through one import, so paging above 500 shows.
    setup(function()
      local paths = {}
      for i = 1, 520 do
        paths[("/bulk/%03d"):format(i)] = { get = {
          operationId = ("bulk_%03d"):format(i) } }
      end
      local status, answer = server:import_json(t.json.encode {
        openapi = "3.0.0", info = { title = "bulk_group", version = "1" },
        paths = paths })
      assert.equal(200, status)
      assert.equal(520, #answer.success)
      big = answer.group_id
      env = server:create_env("env_list")
      local _, page = server:json("GET", base .. "/apis?group_id=" .. big ..
        "&name=bulk_01&limit=500")
      local ids = {}
      for _, api in ipairs(page.apis) do ids[#ids + 1] = api.id end
      assert.equal(10, #ids) -- bulk_010 to bulk_019
      assert.equal(200, (server:batch("online", { apis = ids, env_id = env })))
    end)

    local function list(query)
      local status, page = server:json("GET", base .. "/apis?" .. query)
      assert.equal(200, status)
      assert.equal(#page.apis, page.size)
      return page
    end

    it("pages with the limit rules", function()
      local q = "group_id=" .. big
      assert.equal(520, list(q).total)
      assert.equal(20, list(q).size)
      assert.equal(20, list(q .. "&limit=0").size)
      assert.equal(500, list(q .. "&limit=501").size)
      assert.equal(500, list(q .. "&limit=100000").size)
      assert.equal(20, list(q .. "&offset=500&limit=500").size)
      assert.equal(0, list(q .. "&offset=520").size)
      assert.equal(0, list(q .. "&offset=99999").size)
      assert.equal(list(q .. "&limit=1").apis[1].id,
        list(q .. "&limit=1&offset=-7").apis[1].id)
    end)

    it("shows whole-second times", function()
      for _, api in ipairs(list("group_id=" .. big .. "&limit=50").apis) do
        assert.is_true(c.whole_seconds(api.register_time))
        assert.is_true(c.whole_seconds(api.update_time))
      end
      for _, api in ipairs(list("env_id=" .. env).apis) do
        assert.is_true(c.whole_seconds(api.publish_time), api.publish_time)
      end
    end)

    it("filters by name, exactly with precise_search", function()
      assert.equal(100, list("name=bulk_1&limit=1").total)
      local page = list("name=bulk_123&precise_search=name")
      assert.equal(1, page.total)
      assert.equal("bulk_123", page.apis[1].name)
      assert.equal(0, list("name=bulk_12&precise_search=name").total)
    end)

    it("filters by environment", function()
      local page = list("env_id=" .. env .. "&limit=500")
      assert.equal(10, page.total)
      for _, api in ipairs(page.apis) do
        assert.equal(env, api.run_env_id)
        assert.matches("^bulk_01%d$", api.name)
      end
      assert.equal(0, list("env_id=" .. ("9"):rep(32)).total)
    end)

    it("filters by method and URI", function()
      server:create_api(group, "api_post_only",
        "/post/only", "POST")
      assert.equal(1, list("req_method=POST&req_uri=/post/only").total)
      assert.equal(0, list("req_method=PUT&req_uri=/post/only").total)
      assert.equal(520, list("req_uri=/bulk/&group_id=" .. big).total)
      assert.equal(0, list("req_uri=/bulk/&precise_search=req_uri").total)
      assert.equal(1, list("req_uri=/bulk/007&precise_search=req_uri").total)
    end)

    it("combines filters", function()
      local page = list("group_id=" .. big .. "&name=bulk_01&env_id=" .. env ..
        "&req_method=GET")
      assert.equal(10, page.total)
      assert.equal(0, list("group_id=" .. group .. "&env_id=" .. env).total)
    end)
  end)
end)
