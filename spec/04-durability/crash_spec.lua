-- Crash recovery: several connections publish and take offline while the
-- server is killed with SIGKILL at random moments; after each restart
-- every acknowledged batch is there and an unacknowledged one is whole or
-- absent.
local t = require "apig_test"
local socket = require "socket"

local CYCLES = 24
local CONNECTIONS = 4
local APIS_PER_CONNECTION = 3

-- Reads complete HTTP answers out of conn.buffer; returns the status and
-- body of the first one, or nil when it is not complete yet.
local function take_response(conn)
  local head_end = conn.buffer:find("\r\n\r\n", 1, true)
  if not head_end then return nil end
  local head = conn.buffer:sub(1, head_end)
  local length = tonumber(head:lower():match("content%-length:%s*(%d+)")) or 0
  if #conn.buffer < head_end + 3 + length then return nil end
  local status = tonumber(head:match("^HTTP/1%.%d (%d+)"))
  local body = conn.buffer:sub(head_end + 4, head_end + 3 + length)
  conn.buffer = conn.buffer:sub(head_end + 4 + length)
  return status, body
end

-- Moves whatever the socket holds into conn.buffer; returns false once
-- the peer closed.
local function pump(conn)
  local data, err, partial = conn.sock:receive(65536)
  local chunk = data or partial
  if chunk and #chunk > 0 then conn.buffer = conn.buffer .. chunk end
  return err ~= "closed"
end

-- The next batch of a connection: online (with a unique remark) and
-- offline in turn.
local function next_batch(server, conn, cycle)
  conn.n = conn.n + 1
  local online = conn.n % 3 ~= 0
  local remark = ("c%d-%d-%d"):format(conn.index, cycle, conn.n)
  local body = t.json.encode {
    apis = conn.apis, env_id = t.RELEASE,
    remark = online and remark or nil }
  local target = server.base .. "/apis/publish?action=" ..
    (online and "online" or "offline")
  conn.pending = { online = online, remark = online and remark or nil }
  return t.format_request("POST", target, {}, body)
end

local function record_answer(conn, status, body)
  assert.equal(200, status, body)
  local answer = t.json.decode(body)
  assert.equal(0, #answer.failure, body)
  conn.acked = conn.pending
  conn.pending = nil
end

-- Drives the connections until `seconds` pass, then kills the server and
-- collects the answers that were already sent.
local function load_and_kill(server, conns, cycle, seconds)
  for _, conn in ipairs(conns) do
    conn.sock = server:connect()
    conn.sock:settimeout(0)
    conn.buffer = ""
    assert(conn.sock:send(next_batch(server, conn, cycle)))
  end
  local deadline = socket.gettime() + seconds
  local socks = {}
  for _, conn in ipairs(conns) do socks[#socks + 1] = conn.sock end
  while socket.gettime() < deadline do
    local readable = socket.select(socks, nil, 0.01)
    for _, conn in ipairs(conns) do
      if readable[conn.sock] then
        pump(conn)
        local status, body = take_response(conn)
        if status then
          record_answer(conn, status, body)
          assert(conn.sock:send(next_batch(server, conn, cycle)))
        end
      end
    end
  end
  server:kill()
  for _, conn in ipairs(conns) do
    conn.sock:settimeout(1)
    while pump(conn) do end
    local status, body = take_response(conn)
    if status then record_answer(conn, status, body) end
    conn.sock:close()
  end
end

-- Reads the state of one API: online in RELEASE or not, and the remark of
-- its newest version; checks that versions and publication agree.
local function api_state(server, id)
  local status, versions = server:json("GET", server.base ..
    "/apis/publish/" .. id .. "?env_id=" .. t.RELEASE)
  assert.equal(200, status)
  local effective = 0
  for _, v in ipairs(versions.api_versions) do
    if v.status == 1 then effective = effective + 1 end
  end
  assert.is_true(effective <= 1)
  local newest = versions.api_versions[1]
  local online = newest ~= nil and newest.status == 1
  assert.is_true(effective == 0 or online,
    "the effective version is not the newest")
  local _, api = server:json("GET", server.base .. "/apis/" .. id)
  local published = (api.run_env_id or ""):find(t.RELEASE, 1, true) ~= nil
  assert.equal(online, published)
  return { online = online, remark = newest and newest.remark }
end

local function matches(state, expected)
  if expected == nil then return true end
  if state.online ~= expected.online then return false end
  return not expected.online or state.remark == expected.remark
end

-- Every API of the connection shows the acknowledged batch, or all of
-- them show the one in flight.
local function check_connection(server, conn)
  local states = {}
  for i, id in ipairs(conn.apis) do states[i] = api_state(server, id) end
  local function all(expected)
    for _, state in ipairs(states) do
      if not matches(state, expected) then return false end
    end
    return true
  end
  if conn.pending and all(conn.pending) then
    conn.acked = conn.pending
  else
    assert.is_true(all(conn.acked), ("connection %d lost an acknowledged " ..
      "batch or holds part of one: %s"):format(conn.index,
      t.json.encode { states = states, acked = conn.acked,
                      pending = conn.pending }))
  end
  conn.pending = nil
end

describe("crash recovery", function()
  it("keeps every acknowledged batch over 24 SIGKILLs", function()
    local server = t.start { args = { "--journal-max", "20000",
                                      "--snapshot-interval", "1" } }
    local group = server:create_group("crash")
    local conns = {}
    for c = 1, CONNECTIONS do
      local conn = { index = c, apis = {}, n = 0 }
      for i = 1, APIS_PER_CONNECTION do
        conn.apis[i] = server:create_api(group, ("crash_%d_%d"):format(c, i))
      end
      conns[c] = conn
    end
    math.randomseed(os.time())
    local acked, snapshots = 0, 0
    for cycle = 1, CYCLES do
      load_and_kill(server, conns, cycle, 0.05 + math.random() * 0.4)
      local _, count = server:log():gsub("snapshot of record %d+ started", "")
      snapshots = snapshots + count
      server:restart()
      for _, conn in ipairs(conns) do
        check_connection(server, conn)
        acked = acked + (conn.acked and 1 or 0)
      end
    end
    local batches = 0
    for _, conn in ipairs(conns) do batches = batches + conn.n end
    print(("%d batches sent, %d background snapshots started"):format(
      batches, snapshots))
    assert.is_true(acked > 0)
    assert.is_true(snapshots > 0)
    assert.equal(0, server:stop())
  end)
end)
