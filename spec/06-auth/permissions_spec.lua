-- Permissions and projects: every route needs one permission (read,
-- publish, offline or manage) of a credential bound to the path's project.

local t = require "apig_test"
local sign = require "apig_sign"
local fixture = require "apig_auth_fixture"

describe("permissions", function()
  local server, creds

  -- Each test builds its own environments, so the quota is raised.
  setup(function()
    server, creds = fixture.start { args = { "--env-quota", "500" } }
  end)
  teardown(function() server:stop() end)

  local function as(name, method, path, body, extra)
    local headers = fixture.token(creds, name)
    for k, v in pairs(extra or {}) do headers[k] = v end
    return server:json(method, server.base .. path, body, headers)
  end

  local function admin(method, path, body)
    local status, decoded = as("admin", method, path, body)
    assert(status >= 200 and status < 300, method .. " " .. path .. ": " ..
      tostring(status) .. " " .. t.json.encode(decoded))
    return decoded
  end

  local function api_body(group_id, name)
    return { group_id = group_id, name = name, type = 1,
             req_protocol = "HTTPS", req_method = "GET",
             req_uri = "/" .. name, auth_type = "NONE",
             backend_type = "MOCK", mock_info = { result_content = "ok" } }
  end

  -- A fresh set of entities: environment env (API a published there, as
  -- version), empty environment spare_env, group with APIs a and b (b not
  -- published), empty group spare_group.
  local function make_entities()
    local suffix = fixture.random_hex(4)
    local f = { suffix = suffix }
    f.env = admin("POST", "/envs", { name = "env_" .. suffix }).id
    f.spare_env = admin("POST", "/envs", { name = "spare_" .. suffix }).id
    f.group = admin("POST", "/api-groups", { name = "group_" .. suffix }).id
    f.spare_group = admin("POST", "/api-groups",
      { name = "spare_group_" .. suffix }).id
    f.a = admin("POST", "/apis", api_body(f.group, "a_" .. suffix)).id
    f.b = admin("POST", "/apis", api_body(f.group, "b_" .. suffix)).id
    local batch = admin("POST", "/apis/publish?action=online",
      { apis = { f.a }, env_id = f.env })
    assert.equal(1, #batch.success)
    f.version = batch.success[1].version_id
    return f
  end

  -- Every route: method, path, body, the permission it needs and the
  -- status of a success. Paths and bodies are functions of the entities.
  local routes = {
    { "GET", function() return "/envs" end, nil, "read", 200 },
    { "POST", function() return "/envs" end,
      function(f) return { name = "new_env_" .. f.suffix } end,
      "manage", 201 },
    { "PUT", function(f) return "/envs/" .. f.spare_env end,
      function(f) return { name = "renamed_" .. f.suffix } end,
      "manage", 200 },
    { "DELETE", function(f) return "/envs/" .. f.spare_env end, nil,
      "manage", 204 },
    { "GET", function() return "/api-groups" end, nil, "read", 200 },
    { "POST", function() return "/api-groups" end,
      function(f) return { name = "new_group_" .. f.suffix } end,
      "manage", 201 },
    { "GET", function(f) return "/api-groups/" .. f.group end, nil,
      "read", 200 },
    { "PUT", function(f) return "/api-groups/" .. f.group end,
      function(f) return { name = "renamed_group_" .. f.suffix } end,
      "manage", 200 },
    { "DELETE", function(f) return "/api-groups/" .. f.spare_group end, nil,
      "manage", 204 },
    { "GET", function() return "/apis" end, nil, "read", 200 },
    { "POST", function() return "/apis" end,
      function(f) return api_body(f.group, "new_api_" .. f.suffix) end,
      "manage", 201 },
    { "POST", function() return "/apis/publish?action=online" end,
      function(f) return { apis = { f.b }, env_id = f.env } end,
      "publish", 200 },
    { "POST", function() return "/apis/publish?action=offline" end,
      function(f) return { apis = { f.a }, env_id = f.env } end,
      "offline", 200 },
    { "POST", function() return "/apis/action" end,
      function(f)
        return { action = "online", env_id = f.env, api_id = f.b }
      end, "publish", 201 },
    { "POST", function() return "/apis/action" end,
      function(f)
        return { action = "offline", env_id = f.env, api_id = f.a }
      end, "offline", 201 },
    { "GET", function(f) return "/apis/publish/" .. f.a .. "?env_id=" ..
      f.env end, nil, "read", 200 },
    { "PUT", function(f) return "/apis/publish/" .. f.a end,
      function(f) return { version_id = f.version } end, "publish", 200 },
    { "GET", function(f) return "/apis/versions/" .. f.version end, nil,
      "read", 200 },
    { "DELETE", function(f) return "/apis/versions/" .. f.version end, nil,
      "offline", 204 },
    { "GET", function(f) return "/apis/runtime/" .. f.a .. "?env_id=" ..
      f.env end, nil, "read", 200 },
    { "GET", function(f) return "/apis/" .. f.a end, nil, "read", 200 },
    { "PUT", function(f) return "/apis/" .. f.b end,
      function(f) return api_body(f.group, "renamed_b_" .. f.suffix) end,
      "manage", 200 },
    { "DELETE", function(f) return "/apis/" .. f.b end, nil, "manage", 204 },
    { "POST", function() return "/openapi/import?is_create_group=true" end,
      function(f)
        return { openapi = "3.0.0",
                 info = { title = "import_" .. f.suffix, version = "1" },
                 paths = { ["/pets"] = { get = {
                   operationId = "list_pets_" .. f.suffix } } } }
      end, "manage", 200 },
  }

  local function describe_route(route)
    return route[1] .. " " .. route[2](setmetatable({}, {
      __index = function() return "{id}" end }))
  end

  -- The whole state a caller can see, as text, to compare before and
  -- after a rejected call.
  local function state(f)
    local parts = {}
    for _, path in ipairs { "/envs?limit=500", "/api-groups?limit=500",
                            "/apis?limit=500",
                            "/apis/publish/" .. f.a .. "?env_id=" .. f.env } do
      local status, _, _, text = as("admin", "GET", path)
      assert.equal(200, status)
      parts[#parts + 1] = text
    end
    return table.concat(parts, "\n")
  end

  local function log_lines(request_id)
    local lines = {}
    for line in server:log():gmatch("[^\n]+") do
      if line:find("request_id=" .. request_id, 1, true) then
        lines[#lines + 1] = line
      end
    end
    return lines
  end

  it("each route works with only its permission", function()
    for _, route in ipairs(routes) do
      local f = make_entities()
      local name = "only-" .. route[4]
      local body = route[3] and route[3](f)
      local status, decoded, headers = as(name, route[1], route[2](f), body)
      local label = describe_route(route) .. " as " .. name
      assert.equal(route[5], status, label .. ": " ..
        t.json.encode(decoded))
      if route[1] ~= "GET" then
        -- A write logs who made it.
        local found = false
        for _, line in ipairs(log_lines(headers["x-request-id"])) do
          if line:find(" by " .. name, 1, true) then found = true end
        end
        assert.is_true(found, label .. ": no log line names the caller")
      end
    end
  end)

  it("each route rejects a token without its permission", function()
    local f = make_entities()
    local before = state(f)
    for _, route in ipairs(routes) do
      local body = route[3] and route[3](f)
      for _, name in ipairs { "no-" .. route[4], "none" } do
        local status, decoded, headers = as(name, route[1], route[2](f),
          body)
        local label = describe_route(route) .. " as " .. name
        assert.equal(403, status, label)
        assert.equal("APIG.1005", decoded.error_code, label)
        assert.equal("No permissions to request this method",
          decoded.error_msg, label)
        assert.is_string(headers["x-request-id"])
      end
      for _, p in ipairs(fixture.PERMISSIONS) do
        if p ~= route[4] then
          local status = as("only-" .. p, route[1], route[2](f), body)
          assert.equal(403, status, describe_route(route) .. " as only-" ..
            p)
        end
      end
    end
    assert.equal(before, state(f))
  end)

  it("needs offline, not publish, for a batch offline", function()
    local f = make_entities()
    local status = as("only-publish", "POST",
      "/apis/publish?action=offline", { apis = { f.a }, env_id = f.env })
    assert.equal(403, status)
    status = as("only-offline", "POST", "/apis/publish?action=online",
      { apis = { f.b }, env_id = f.env })
    assert.equal(403, status)
  end)

  describe("projects", function()
    local p2_base = "/v2/p2/apigw/instances/i2"

    it("reject a token of another project", function()
      local status, body = as("p2-admin", "GET", "/envs")
      assert.equal(403, status)
      assert.equal("APIG.1005", body.error_code)
      status = server:json("GET", p2_base .. "/envs", nil,
        fixture.token(creds, "admin"))
      assert.equal(403, status)
    end)

    it("accept a token on its own project", function()
      local status, body = server:json("GET", p2_base .. "/envs", nil,
        fixture.token(creds, "p2-admin"))
      assert.equal(200, status)
      assert.equal(1, body.total)
    end)

    it("reject a token on an unknown project before the instance", function()
      local status, body = server:json("GET",
        "/v2/p3/apigw/instances/i1/envs", nil, fixture.token(creds, "admin"))
      assert.equal(403, status)
      assert.equal("APIG.1005", body.error_code)
    end)

    it("reject a batch of another project and change nothing", function()
      local f = make_entities()
      local before = state(f)
      local status, body = as("p2-admin", "POST",
        "/apis/publish?action=offline", { apis = { f.a }, env_id = f.env })
      assert.equal(403, status)
      assert.equal("APIG.1005", body.error_code)
      assert.equal(before, state(f))
    end)

    it("reject an access key of another project", function()
      local key = creds.keys["sdk-p2"]
      local status, body = sign.send(server, sign.request {
        ak = key.ak, sk = key.sk, method = "GET",
        target = server.base .. "/envs",
        headers = { { "Host", "127.0.0.1:" .. server.port } } })
      assert.equal(403, status)
      assert.equal("APIG.1005", body.error_code)
      status = sign.send(server, sign.request {
        ak = key.ak, sk = key.sk, method = "GET", target = p2_base .. "/envs",
        headers = { { "Host", "127.0.0.1:" .. server.port } } })
      assert.equal(200, status)
    end)

    it("check an access key's permissions", function()
      local key = creds.keys["sdk-reader"]
      local function send(method, path, body)
        return sign.send(server, sign.request {
          ak = key.ak, sk = key.sk, method = method,
          target = server.base .. path, body = body,
          headers = { { "Host", "127.0.0.1:" .. server.port } } })
      end
      assert.equal(200, (send("GET", "/api-groups")))
      local status, body = send("POST", "/api-groups",
        '{"name":"reader_group"}')
      assert.equal(403, status)
      assert.equal("APIG.1005", body.error_code)
    end)

    it("reject an X-Project-Id that differs from the path", function()
      for _, headers in ipairs {
        { ["X-Project-Id"] = "p2" },
        { ["x-project-id"] = "P1" },
        { ["X-PROJECT-ID"] = "" },
      } do
        local status, body = as("admin", "GET", "/envs", nil, headers)
        assert.equal(403, status, t.json.encode(headers))
        assert.equal("APIG.1005", body.error_code)
      end
      local status = as("admin", "GET", "/envs", nil,
        { ["X-Project-Id"] = "p1" })
      assert.equal(200, status)
    end)

    it("reject a second X-Project-Id that differs", function()
      local token = creds.tokens.admin
      for _, pair in ipairs { { "p1", "p2" }, { "p2", "p1" } } do
        local reply = server:raw("GET " .. server.base .. "/envs HTTP/1.1\r\n" ..
          "Host: 127.0.0.1\r\nX-Auth-Token: " .. token .. "\r\n" ..
          "X-Project-Id: " .. pair[1] .. "\r\nx-project-id: " .. pair[2] ..
          "\r\nConnection: close\r\n\r\n")
        assert.matches("^HTTP/1.1 403", reply)
        assert.matches("APIG.1005", reply)
      end
    end)

    it("reject a signed X-Project-Id of another project", function()
      local key = creds.keys["sdk-p1"]
      local status, body = sign.send(server, sign.request {
        ak = key.ak, sk = key.sk, method = "GET",
        target = server.base .. "/envs",
        headers = { { "Host", "127.0.0.1:" .. server.port },
                    { "X-Project-Id", "p2" } } })
      assert.equal(403, status)
      assert.equal("APIG.1005", body.error_code)
    end)
  end)
end)
