-- Measures /healthz latency on one keep-alive connection, one request
-- per millisecond, until the file named by argv[2] exists. Prints the
-- count, median, 99th percentile and maximum in milliseconds.
local socket = require "socket"
local port, stop_file = tonumber(arg[1]), arg[2]
local sock = assert(socket.connect("127.0.0.1", port))
sock:setoption("tcp-nodelay", true)
local request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
local latencies = {}
local function stopped()
  local f = io.open(stop_file)
  if f then f:close() end
  return f ~= nil
end
while not stopped() do
  local start = socket.gettime()
  assert(sock:send(request))
  local length = 0
  while true do
    local line = assert(sock:receive("*l"))
    if line == "" then break end
    length = tonumber(line:lower():match("^content%-length:%s*(%d+)")) or length
  end
  if length > 0 then assert(sock:receive(length)) end
  latencies[#latencies + 1] = (socket.gettime() - start) * 1000
  socket.sleep(0.001)
end
table.sort(latencies)
local function at(q) return latencies[math.max(1, math.ceil(#latencies * q))] end
print(("%d probes, median %.2f ms, p99 %.2f ms, max %.2f ms"):format(
  #latencies, at(0.5), at(0.99), latencies[#latencies]))
