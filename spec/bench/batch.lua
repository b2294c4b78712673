-- Measures 1000-id online batches against a catalogue of APIs, over one
-- keep-alive connection: p50/p99 latency and batches per second.
--
--   lua5.4 spec/bench/batch.lua [APIS] [BATCHES] [extra server args...]
package.path = "spec/helpers/?.lua;" .. package.path
local t = require "apig_test"
local socket = require "socket"

local total_apis = tonumber(arg[1]) or 100000
local batches = tonumber(arg[2]) or 200
local extra = {}
for i = 3, #arg do extra[#extra + 1] = arg[i] end

local server = t.start { instances = { "bench:i1" }, args = extra,
                         start_timeout = 120 }

-- The catalogue: groups of 1000 APIs, each imported as one document.
local start = t.now()
local ids = {}
for group = 1, math.ceil(total_apis / 1000) do
  local paths = {}
  for i = 1, math.min(1000, total_apis - (group - 1) * 1000) do
    paths[("/g%d/r%d"):format(group, i)] = {
      get = { operationId = ("g%d_op%d"):format(group, i) } }
  end
  local doc = t.json.encode { openapi = "3.0.0", paths = paths,
    info = { title = "bench group " .. group, version = "1" } }
  local status, answer = server:import_json(doc)
  assert(status == 200, "import failed: " .. tostring(status))
  for _, item in ipairs(answer.success) do ids[#ids + 1] = item.id end
end
print(("catalogue: %d APIs imported in %.1f s"):format(#ids, t.now() - start))

-- The requests are encoded before the clock starts, so the figures are the
-- server's and the loopback's, not the Lua client's.
local target = server.base .. "/apis/publish?action=online"
local requests = {}
for n = 1, batches do
  local chunk = {}
  local first = ((n - 1) * 1000) % (#ids - 999)
  for i = 1, 1000 do chunk[i] = ids[first + i] end
  local body = t.json.encode { apis = chunk, env_id = t.RELEASE,
                               remark = "bench" }
  requests[n] = t.format_request("POST", target,
    { ["Connection"] = "keep-alive" }, body)
end

local sock = server:connect()
local latencies = {}
start = t.now()
for n = 1, batches do
  local request = requests[n]
  local sent = socket.gettime()
  assert(sock:send(request))
  local status, text = t.read_response(sock)
  latencies[n] = socket.gettime() - sent
  assert(status == 200, "batch failed: " .. tostring(status))
  assert(#text > 0)
end
local elapsed = t.now() - start
table.sort(latencies)
local function pct(p) return latencies[math.max(1, math.ceil(#latencies * p))] end
print(("1000-id online batches: %d in %.2f s, %.1f batches/s, " ..
       "p50 %.2f ms, p99 %.2f ms"):format(batches, elapsed, batches / elapsed,
       pct(0.5) * 1000, pct(0.99) * 1000))
sock:close()
server:stop()
