-- Raw-socket tools for the hostile-client specs: reading until the server
-- closes, splitting several answers, and watching a server's memory and
-- descriptors through /proc.

local socket = require "socket"
local t = require "apig_test"

local M = {}

--- Opens a connection to server with Nagle off, so small writes leave at
--- once and arrive as separate reads.
function M.connect(server, timeout)
  local sock = assert(socket.tcp())
  sock:settimeout(timeout or 5)
  assert(sock:connect("127.0.0.1", server.port))
  sock:setoption("tcp-nodelay", true)
  return sock
end

--- Reads until the peer closes or `timeout` seconds pass without data.
--- Returns the bytes and whether the peer closed the connection.
function M.read_until_close(sock, timeout)
  sock:settimeout(timeout or 5)
  local chunks = {}
  while true do
    local data, err, partial = sock:receive(65536)
    if data then
      chunks[#chunks + 1] = data
    else
      if partial and #partial > 0 then chunks[#chunks + 1] = partial end
      return table.concat(chunks), err == "closed"
    end
  end
end

--- Sends bytes, ignoring a reset or close by the server: a server may
--- answer and close before a hostile client stops sending.
function M.send_all(sock, bytes)
  local sent = 0
  while sent < #bytes do
    local last, err, partial = sock:send(bytes, sent + 1)
    if not last then
      if err ~= "timeout" then return false, err, partial or sent end
      sent = partial
    else
      sent = last
    end
  end
  return true
end

--- Sends bytes one piece at a time, pausing so each arrives in its own read.
function M.send_pieces(sock, pieces, pause)
  for _, piece in ipairs(pieces) do
    assert(sock:send(piece))
    socket.sleep(pause or 0.02)
  end
end

-- Parses one answer at `pos` of data. Returns a table or nil.
local function parse_one(data, pos)
  local head_end = data:find("\r\n\r\n", pos, true)
  if not head_end then return nil end
  local head = data:sub(pos, head_end - 1)
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  for line in head:gmatch("\r\n([^\r]+)") do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local length = tonumber(headers["content-length"] or "0")
  local body = data:sub(head_end + 4, head_end + 3 + length)
  return { status = status, headers = headers, body = body,
           json = length > 0 and t.json.decode(body) or nil },
    head_end + 4 + length
end

--- Splits the bytes of pipelined answers into a list of answers.
function M.parse_responses(data)
  local out, pos = {}, 1
  while pos <= #data do
    local answer, next_pos = parse_one(data, pos)
    if not answer then break end
    out[#out + 1] = answer
    pos = next_pos
  end
  return out
end

--- Builds one request; headers is a list of "Name: value" lines.
function M.request_bytes(method, target, headers, body)
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: 127.0.0.1",
                  "X-Auth-Token: dev-token" }
  for _, line in ipairs(headers or {}) do lines[#lines + 1] = line end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

--- Encodes a body as chunks that end at the given byte offsets, without
--- the last-chunk line.
function M.chunked(body, cuts, extension)
  local ends = { #body }
  for _, cut in ipairs(cuts) do ends[#ends + 1] = cut end
  table.sort(ends)
  local out, from = {}, 1
  for _, cut in ipairs(ends) do
    if cut >= from then
      local piece = body:sub(from, cut)
      out[#out + 1] = string.format("%x%s\r\n%s\r\n", #piece,
        extension or "", piece)
      from = cut + 1
    end
  end
  return table.concat(out)
end

--- Resident memory of the server process, in KiB.
function M.rss_kb(server)
  local status = t.read_file("/proc/" .. server.pid .. "/status") or ""
  return tonumber(status:match("VmRSS:%s*(%d+)"))
end

--- Open descriptors of the server process.
function M.fd_count(server)
  local out = t.capture("ls /proc/" .. server.pid .. "/fd | wc -l")
  return tonumber(out)
end

--- Polls fn until it returns true or `timeout` seconds pass.
function M.eventually(fn, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  repeat
    if fn() then return true end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  return fn()
end

--- An OpenAPI 3.0 document in JSON with `count` GET operations.
function M.openapi_document(title, count)
  local paths = {}
  for i = 1, count do
    paths["/items" .. i] = { get = {
      operationId = string.format("getItem%04d", i),
      responses = { ["200"] = { description = "ok" } } } }
  end
  return t.json.encode { openapi = "3.0.0",
    info = { title = title, version = "1.0.0" }, paths = paths }
end

return M
