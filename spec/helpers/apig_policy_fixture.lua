-- Fixtures for the policy specs: servers started with a policy file
-- written from a string, and lookups over batch answers.

local assert = require "luassert"
local t = require "apig_test"

local M = {}

--- Writes source to a new folder as policy.lua and returns its path.
function M.write_policy(source, dir)
  dir = dir or t.tmpdir()
  local path = dir .. "/policy.lua"
  t.write_file(path, source)
  return path
end

--- Starts a server with source as its policy. opts as for t.start, plus
--- args appended after --policy.
function M.start(source, opts)
  opts = opts or {}
  local path = M.write_policy(source)
  local args = { "--policy", path }
  for _, arg in ipairs(opts.args or {}) do args[#args + 1] = arg end
  local server = t.start { instances = opts.instances, args = args,
                           import = opts.import }
  return server, path
end

--- Maps api_id to the item for each item of a success or failure list.
function M.by_id(items)
  local map = {}
  for _, item in ipairs(items or {}) do map[item.api_id] = item end
  return map
end

--- Returns the api_id of each item, in order.
function M.ids(items)
  local ids = {}
  for i, item in ipairs(items or {}) do ids[i] = item.api_id end
  return ids
end

--- Creates one API per name in a new group and returns name -> id.
function M.create_apis(server, group_name, names)
  local group = server:create_group(group_name)
  local ids = {}
  for _, name in ipairs(names) do
    ids[name] = server:create_api(group, name, "/" .. name)
  end
  return ids, group
end

--- Returns the versions of api_id in env_id, newest first.
function M.versions(server, api_id, env_id)
  local status, body = server:json("GET", server.base .. "/apis/publish/" ..
    api_id .. "?env_id=" .. env_id)
  assert(status == 200, "listing versions: " .. tostring(status))
  return body.api_versions, body.total
end

--- Checks that a hook error message is one line naming the hook, without
--- a traceback or a file path.
function M.assert_clean_hook_error(message, hook)
  assert.is_string(message)
  assert.equal(hook .. ": ", message:sub(1, #hook + 2))
  assert.is_nil(message:find("\n", 1, true))
  assert.is_nil(message:find("traceback", 1, true))
  assert.is_nil(message:find(".lua", 1, true))
  assert.is_nil(message:find("/tmp", 1, true))
end

return M
