-- Slow, half-closed and early-closing clients, and the connection limit,
-- against real servers with short timeouts.
local socket = require "socket"
local t = require "apig_test"
local io_ = require "hostile_io"

local SLOW_CLIENTS = 300
local REQUEST_TIMEOUT_S = 1.5

-- Median and maximum of a list of seconds.
local function latency_figures(samples)
  table.sort(samples)
  return samples[math.ceil(#samples / 2)], samples[#samples]
end

local function timed_request(server)
  local started = socket.gettime()
  local status = server:request("GET", server.base .. "/envs")
  assert.equal(200, status)
  return socket.gettime() - started
end

describe("slow clients", function()
  local server

  setup(function()
    server = t.start { args = { "--request-timeout", "1500" } }
  end)
  teardown(function() server:stop() end)

  -- Opens SLOW_CLIENTS connections that each send `head` at once, then
  -- `prefix` one byte per `interval` seconds, serves normal requests
  -- meanwhile, and returns per connection what it received and when the
  -- server closed it.
  local function run_slow_clients(head, prefix, interval)
    local clients = {}
    for i = 1, SLOW_CLIENTS do
      local sock = io_.connect(server)
      local started = nil
      if head ~= "" then
        assert(sock:send(head))
        started = socket.gettime()
      end
      sock:settimeout(0)
      clients[i] = { sock = sock, sent = 0, data = {}, started = started }
    end
    local latencies, open = {}, SLOW_CLIENTS
    local deadline = socket.gettime() + 5 * REQUEST_TIMEOUT_S + 5
    local next_send = 0
    while open > 0 and socket.gettime() < deadline do
      local now = socket.gettime()
      if now >= next_send then
        for _, c in ipairs(clients) do
          if not c.closed_at and c.sent < #prefix then
            c.sent = c.sent + 1
            c.sock:send(prefix:sub(c.sent, c.sent))
            c.started = c.started or now
          end
        end
        next_send = now + interval
      end
      for _, c in ipairs(clients) do
        if not c.closed_at then
          local data, err, partial = c.sock:receive(4096)
          c.data[#c.data + 1] = data or partial
          if err == "closed" then
            c.closed_at = socket.gettime()
            open = open - 1
          end
        end
      end
      latencies[#latencies + 1] = timed_request(server)
      socket.sleep(0.02)
    end
    for _, c in ipairs(clients) do c.sock:close() end
    return clients, latencies
  end

  -- Checks that every slow connection got one 408 and was closed at its
  -- request timeout, that normal requests kept their latency, and that
  -- the server's descriptors return to their count before the test.
  local function check_slow_clients(head, prefix, interval)
    local baseline_fds = io_.fd_count(server)
    local baseline = {}
    for i = 1, 20 do baseline[i] = timed_request(server) end
    local clients, latencies = run_slow_clients(head, prefix, interval)

    for i, c in ipairs(clients) do
      assert.is_not_nil(c.closed_at, "slow connection " .. i .. " is open")
      local lived = c.closed_at - c.started
      assert.is_true(lived >= REQUEST_TIMEOUT_S - 0.1,
        "slow connection closed after " .. lived .. " s")
      assert.is_true(lived < REQUEST_TIMEOUT_S + 2,
        "slow connection closed after " .. lived .. " s")
      local answers = io_.parse_responses(table.concat(c.data))
      assert.equal(1, #answers)
      assert.equal(408, answers[1].status)
      assert.equal("APIG.2000", answers[1].json.error_code)
    end
    local base_median, base_max = latency_figures(baseline)
    local median, max = latency_figures(latencies)
    print(string.format("\n%d slow clients: normal request latency " ..
      "median %.1f ms, max %.1f ms over %d requests (alone: median " ..
      "%.1f ms, max %.1f ms)", SLOW_CLIENTS, median * 1000, max * 1000,
      #latencies, base_median * 1000, base_max * 1000))
    -- A server that waited on slow clients would stall for the whole
    -- request timeout; this bound is a fraction of it.
    assert.is_true(max < REQUEST_TIMEOUT_S / 3,
      "a normal request took " .. max .. " s")
    assert.is_true(io_.eventually(function()
      return io_.fd_count(server) == baseline_fds
    end, 10), "descriptors: " .. io_.fd_count(server) .. ", before: " ..
      baseline_fds)
  end

  it("closes 300 slow header senders at the request timeout", function()
    local prefix = "GET " .. server.base .. "/envs HTTP/1.1\r\n" ..
      "Host: 127.0.0.1\r\nX-Auth-Token: dev-token\r\n\r\n"
    check_slow_clients("", prefix, 0.6)
  end)

  it("closes 300 slow body senders at the request timeout", function()
    local body = '{"apis":["x"],"env_id":"' .. t.RELEASE .. '"}'
    local prefix = io_.request_bytes("POST", server.base ..
      "/apis/publish?action=online", {}, body)
    -- The head arrives whole, the body one byte at a time.
    local head_end = prefix:find("\r\n\r\n", 1, true) + 3
    check_slow_clients(prefix:sub(1, head_end), body, 0.6)
  end)
end)

describe("half-closed and closing clients", function()
  local server

  setup(function() server = t.start {} end)
  teardown(function() server:stop() end)

  it("sends every answer after the client shuts down writing", function()
    local sock = io_.connect(server)
    local target = server.base .. "/apis?limit=500"
    assert(sock:send(io_.request_bytes("GET", "/healthz") ..
      io_.request_bytes("GET", target) ..
      io_.request_bytes("GET", server.base .. "/envs")))
    sock:shutdown("send")
    local data, closed = io_.read_until_close(sock)
    sock:close()
    local answers = io_.parse_responses(data)
    assert.is_true(closed)
    assert.equal(3, #answers)
    for _, answer in ipairs(answers) do assert.equal(200, answer.status) end
    assert.equal(1, answers[3].json.total)
  end)

  it("keeps an HTTP/1.1 connection without a Connection header", function()
    local sock = io_.connect(server)
    for _ = 1, 3 do
      assert(sock:send(io_.request_bytes("GET", "/healthz")))
      local status, _, headers = t.read_response(sock)
      assert.equal(200, status)
      assert.equal("keep-alive", headers["connection"])
    end
    sock:close()
  end)

  it("closes an HTTP/1.0 connection without keep-alive", function()
    local sock = io_.connect(server)
    assert(sock:send("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" ..
      "GET /healthz HTTP/1.0\r\n\r\n"))
    local data, closed = io_.read_until_close(sock)
    sock:close()
    local answers = io_.parse_responses(data)
    assert.is_true(closed)
    assert.equal(1, #answers)
    assert.equal("close", answers[1].headers["connection"])
  end)

  it("keeps an HTTP/1.0 connection that asks for keep-alive", function()
    local sock = io_.connect(server)
    for _ = 1, 2 do
      assert(sock:send("GET /healthz HTTP/1.0\r\n" ..
        "Connection: keep-alive\r\n\r\n"))
      local status, _, headers = t.read_response(sock)
      assert.equal(200, status)
      assert.equal("keep-alive", headers["connection"])
    end
    sock:close()
  end)

  it("honours Connection: close", function()
    local sock = io_.connect(server)
    assert(sock:send(io_.request_bytes("GET", "/healthz",
      { "Connection: close" }) .. io_.request_bytes("GET", "/healthz")))
    local data, closed = io_.read_until_close(sock)
    sock:close()
    local answers = io_.parse_responses(data)
    assert.is_true(closed)
    assert.equal(1, #answers)
    assert.equal("close", answers[1].headers["connection"])
  end)

  it("applies a 1000-id batch whole or not at all when the client leaves",
    function()
      local status, imported = server:json("POST", server.base ..
        "/openapi/import?is_create_group=true",
        io_.openapi_document("Thousand", 1000))
      assert.equal(200, status)
      assert.equal(1000, #imported.success)
      local ids = {}
      for i, item in ipairs(imported.success) do ids[i] = item.id end
      local env = server:create_env("LEAVE")
      local body = t.json.encode { apis = ids, env_id = env }

      local function published()
        local code, list = server:json("GET", server.base ..
          "/apis?limit=1&env_id=" .. env)
        assert.equal(200, code)
        return list.total
      end

      for round = 1, 6 do
        local action = round % 2 == 1 and "online" or "offline"
        local sock = io_.connect(server)
        if round > 2 then
          -- An abortive close: the kernel sends a reset.
          sock:setoption("linger", { on = true, timeout = 0 })
        end
        io_.send_all(sock, io_.request_bytes("POST", server.base ..
          "/apis/publish?action=" .. action, {}, body))
        sock:close()
        assert.is_true(io_.eventually(function()
          local count = published()
          return count == (action == "online" and 1000 or 0)
        end, 10), "round " .. round .. ": " .. published() ..
          " APIs published")
        assert.equal(200, server:request("GET", "/healthz"))
      end
    end)
end)

describe("connection limit", function()
  local server

  setup(function()
    server = t.start { args = { "--max-connections", "3" } }
  end)
  teardown(function() server:stop() end)

  local function open_served()
    local sock = io_.connect(server)
    assert(sock:send(io_.request_bytes("GET", "/healthz")))
    local status = t.read_response(sock)
    assert.equal(200, status)
    return sock
  end

  it("closes connections over the limit at once", function()
    local baseline_fds = io_.fd_count(server)
    local held = { open_served(), open_served(), open_served() }
    local extra = io_.connect(server)
    extra:send(io_.request_bytes("GET", "/healthz"))
    local data, closed = io_.read_until_close(extra, 2)
    extra:close()
    held[1]:close()
    local freed = io_.eventually(function()
      return io_.fd_count(server) == baseline_fds + 2
    end, 5)
    local served = server:request("GET", "/healthz")
    for i = 2, 3 do held[i]:close() end

    assert.equal("", data)
    assert.is_true(closed)
    assert.is_true(io_.eventually(function()
      return server:log():find("limit of 3 open connections", 1, true)
    end, 5))
    assert.is_true(freed)
    assert.equal(200, served)
    assert.is_true(io_.eventually(function()
      return io_.fd_count(server) == baseline_fds
    end, 5))
  end)
end)

describe("timeouts", function()
  local server

  setup(function()
    server = t.start { args = { "--idle-timeout", "700",
      "--request-timeout", "700" } }
  end)
  teardown(function() server:stop() end)

  local function open_served()
    local sock = io_.connect(server)
    assert(sock:send(io_.request_bytes("GET", "/healthz")))
    local status = t.read_response(sock)
    assert.equal(200, status)
    return sock
  end

  it("closes an idle keep-alive connection after the idle timeout",
    function()
      local sock = open_served()
      local started = socket.gettime()
      local data, closed = io_.read_until_close(sock, 5)
      local waited = socket.gettime() - started
      sock:close()
      assert.equal("", data)
      assert.is_true(closed)
      assert.is_true(waited > 0.6 and waited < 3, "closed after " .. waited)
    end)

  it("closes a connection that never sends after the idle timeout",
    function()
      local sock = io_.connect(server)
      local started = socket.gettime()
      local data, closed = io_.read_until_close(sock, 5)
      local waited = socket.gettime() - started
      sock:close()
      assert.equal("", data)
      assert.is_true(closed)
      assert.is_true(waited > 0.6 and waited < 3, "closed after " .. waited)
    end)

  it("answers 408 to a request still incomplete at its timeout",
    function()
      local sock = io_.connect(server)
      assert(sock:send("GET /healthz HTTP/1.1\r\nHost: 127"))
      local data, closed = io_.read_until_close(sock, 5)
      sock:close()
      local answers = io_.parse_responses(data)
      assert.is_true(closed)
      assert.equal(1, #answers)
      assert.equal(408, answers[1].status)
      assert.equal("APIG.2000", answers[1].json.error_code)
      assert.matches("0%.7 seconds", answers[1].json.error_msg)
    end)
end)

describe("configured size limits", function()
  local server

  setup(function()
    server = t.start { args = { "--max-header", "2048", "--max-body",
      "256", "--max-import-body", "4096" } }
  end)
  teardown(function() server:stop() end)

  it("answers 431 past the configured header limit", function()
    local data = server:raw(io_.request_bytes("GET", "/healthz",
      { "X-Filler: " .. string.rep("f", 2048) }))
    local answers = io_.parse_responses(data)
    assert.equal(1, #answers)
    assert.equal(431, answers[1].status)
    assert.matches("2048", answers[1].json.error_msg)
  end)

  it("answers 413 past the configured body limit", function()
    local body = '{"apis":["' .. string.rep("a", 300) .. '"]}'
    local data = server:raw(io_.request_bytes("POST", server.base ..
      "/apis/publish?action=online", {}, body))
    local answers = io_.parse_responses(data)
    assert.equal(1, #answers)
    assert.equal(413, answers[1].status)
    assert.matches("256", answers[1].json.error_msg)
  end)

  it("takes imports up to their own limit", function()
    local document = io_.openapi_document("Small", 20)
    assert.is_true(#document > 256 and #document < 4096)
    local status = server:request("POST", server.base ..
      "/openapi/import?is_create_group=true", document)
    assert.equal(200, status)
    local large = io_.openapi_document("Large", 200)
    status = server:request("POST", server.base ..
      "/openapi/import?is_create_group=true", large)
    assert.equal(413, status)
  end)
end)
