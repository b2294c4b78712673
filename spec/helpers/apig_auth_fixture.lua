-- Credentials for the authentication specs: a file with tokens and access
-- keys of projects p1 and p2, random secrets per run, and a server that
-- serves instances p1:i1 and p2:i2 with it.

local t = require "apig_test"

local M = {}

M.PERMISSIONS = { "read", "publish", "offline", "manage" }

local function random_hex(bytes)
  local hex = t.capture("openssl rand -hex " .. bytes):gsub("%s+$", "")
  assert(#hex == bytes * 2, "openssl rand failed")
  return hex
end
M.random_hex = random_hex

local function all_but(permission)
  local out = {}
  for _, p in ipairs(M.PERMISSIONS) do
    if p ~= permission then out[#out + 1] = p end
  end
  return out
end

--- Returns the credentials table: tokens[name] and keys[name] give the
--- secret values, file_text the JSON of the file.
function M.credentials()
  local c = { tokens = {}, keys = {} }
  local token_entries, key_entries = {}, {}
  local function token(name, project, permissions)
    local value = "tok-" .. random_hex(16)
    c.tokens[name] = value
    token_entries[#token_entries + 1] = { name = name, token = value,
      project_id = project, permissions = permissions }
  end
  local function key(name, project, permissions)
    local entry = { name = name, ak = "AK" .. random_hex(8):upper(),
      sk = "SK" .. random_hex(20), project_id = project,
      permissions = permissions }
    c.keys[name] = entry
    key_entries[#key_entries + 1] = entry
  end
  token("admin", "p1", M.PERMISSIONS)
  token("p2-admin", "p2", M.PERMISSIONS)
  for _, p in ipairs(M.PERMISSIONS) do
    token("only-" .. p, "p1", { p })
    token("no-" .. p, "p1", all_but(p))
  end
  key("sdk-p1", "p1", M.PERMISSIONS)
  key("sdk-p2", "p2", M.PERMISSIONS)
  key("sdk-reader", "p1", { "read" })
  -- lua-cjson encodes an empty table as {}, so the token without
  -- permissions ("permissions":[]) is spliced into the JSON text.
  c.tokens.none = "tok-" .. random_hex(16)
  c.file_text = t.json.encode { tokens = token_entries,
                                access_keys = key_entries }
  c.file_text = c.file_text:gsub('"tokens":%[', '"tokens":[{"name":"none",' ..
    '"token":"' .. c.tokens.none .. '","project_id":"p1",' ..
    '"permissions":[]},', 1)
  return c
end

--- Writes the credentials to a new file with mode 600; returns its path.
function M.write(c, mode)
  local path = t.tmpdir() .. "/credentials.json"
  t.write_file(path, c.file_text)
  os.execute("chmod " .. (mode or "600") .. " " .. t.shell_quote(path))
  return path
end

--- Starts a server with fresh credentials. Returns server, credentials
--- and the file path. opts.args adds arguments.
function M.start(opts)
  opts = opts or {}
  local c = M.credentials()
  local path = M.write(c)
  local args = { "--credentials", path }
  for _, arg in ipairs(opts.args or {}) do args[#args + 1] = arg end
  local server = t.start { instances = { "p1:i1", "p2:i2" }, args = args }
  return server, c, path
end

--- Headers with the token of name.
function M.token(c, name)
  return { ["X-Auth-Token"] = assert(c.tokens[name], name) }
end

return M
