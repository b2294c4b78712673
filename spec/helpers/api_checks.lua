-- Shape checks shared by the specs of the management, version and import
-- calls: exact field sets, time formats and state snapshots.

local assert = require "luassert"

local M = {}

local WHOLE = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"
local FRACTION = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d*[1-9]Z$"

--- Is text an RFC 3339 UTC time in whole seconds?
function M.whole_seconds(text)
  return type(text) == "string" and text:match(WHOLE) ~= nil
end

--- Is text an RFC 3339 UTC time with a fraction (no trailing zeros)?
function M.fractional(text)
  return type(text) == "string" and text:match(FRACTION) ~= nil and
    #text:match("%.(%d+)Z$") <= 9
end

--- Returns the sorted keys of t, joined with ",".
function M.keys(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = k end
  table.sort(list)
  return table.concat(list, ",")
end

--- Returns the sorted words of a space-separated list, joined with ",".
function M.sorted(words)
  local list = {}
  for w in words:gmatch("%S+") do list[#list + 1] = w end
  table.sort(list)
  return table.concat(list, ",")
end

M.ENV_FIELDS = M.sorted("id name remark create_time")
M.GROUP_FIELDS = M.sorted("id name remark status on_sell_status is_default " ..
  "sl_domain_access_enabled sl_domain sl_domains url_domains register_time " ..
  "update_time api_count")
M.PUBLISH_FIELDS = M.sorted("publish_id api_id api_name env_id remark " ..
  "publish_time version_id")
M.OFFLINE_FIELDS = M.sorted("api_id api_name env_id version_id")
M.VERSION_FIELDS = M.sorted("version_id version_no api_id env_id env_name " ..
  "remark publish_time status")

--- Returns a text that changes whenever environments, groups, APIs or
--- the versions of the given APIs change.
function M.state(server, api_ids)
  local parts = {}
  for _, path in ipairs { "/envs?limit=500", "/api-groups?limit=500",
                          "/apis?limit=500" } do
    local _, body = server:request("GET", server.base .. path)
    parts[#parts + 1] = body
  end
  for _, id in ipairs(api_ids or {}) do
    local _, body = server:request("GET", server.base .. "/apis/publish/" ..
      id .. "?limit=500")
    parts[#parts + 1] = body
  end
  return table.concat(parts, "\n")
end

--- A valid API create body with a MOCK backend.
function M.api_body(group_id, name, fields)
  local body = { group_id = group_id, name = name, type = 1,
    req_protocol = "HTTPS", req_method = "GET", req_uri = "/" .. name,
    auth_type = "NONE", backend_type = "MOCK",
    mock_info = { result_content = "ok" } }
  for k, v in pairs(fields or {}) do body[k] = v end
  return body
end

--- Asserts an error response: status and APIG code.
function M.is_error(status, body, want_status, want_code)
  assert.equal(want_status, status)
  assert.is_table(body)
  assert.equal(want_code, body.error_code)
  assert.is_string(body.error_msg)
end

return M
