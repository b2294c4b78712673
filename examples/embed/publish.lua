-- Embedding example: imports an OpenAPI file into an in-process gateway,
-- publishes every imported API to RELEASE under a policy, and prints the
-- result of each API.
--
--   lua5.4 publish.lua CATALOGUE.json POLICY.lua DATA_DIR
--
-- apig.so must be on package.cpath (LUA_CPATH="build/lua/?.so;;").
local apig = require "apig"
local cjson = require "cjson"

local catalogue, policy, data_dir = arg[1], arg[2], arg[3]
if not data_dir then
  io.stderr:write("usage: publish.lua CATALOGUE.json POLICY.lua DATA_DIR\n")
  os.exit(2)
end

local gw <close> = assert(apig.open {
  data_dir = data_dir,
  instances = { "demo-project:demo-instance" },
  policy = policy,
})
print("apig module " .. apig.version)

local file = assert(io.open(catalogue, "rb"))
local text = file:read("a")
file:close()
local base = "/v2/demo-project/apigw/instances/demo-instance"
local status, body = gw:request("POST",
  base .. "/openapi/import?is_create_group=true",
  { ["X-Auth-Token"] = "example" }, text)
if status ~= 200 then
  io.stderr:write("import failed: ", status, " ", body, "\n")
  os.exit(1)
end

local ids = {}
for _, created in ipairs(cjson.decode(body).success) do
  ids[#ids + 1] = created.id
end

local result, message, code = gw:publish {
  apis = ids, env_id = apig.RELEASE, remark = "first release" }
if not result then
  io.stderr:write("publish failed: ", code, " ", message, "\n")
  os.exit(1)
end
for _, item in ipairs(result.success) do
  print(("published %-16s version %s remark \"%s\""):format(
    item.api_name, item.version_id, item.remark))
end
for _, item in ipairs(result.failure) do
  print(("failed    %-16s %s %s"):format(
    item.api_name or "", item.error_code, item.error_msg))
end
print(("%d published, %d failed"):format(#result.success, #result.failure))
