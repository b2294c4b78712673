-- Hostile framing and sizes: each bad request gets one error answer and a
-- closed connection, other clients are served meanwhile, and the server's
-- memory does not grow by what the request declares.
local socket = require "socket"
local t = require "apig_test"
local io_ = require "hostile_io"

-- Memory a rejected request may add to the server, in KiB: far below the
-- sizes the requests below declare or send.
local RSS_SLACK_KB = 8 * 1024

describe("hostile framing and sizes", function()
  local server, env, api

  setup(function()
    server = t.start {}
    env = server:create_env("TEST")
    local group = server:create_group("sizes")
    api = server:create_api(group, "sizes_api")
    local status = server:batch("online", { apis = { api }, env_id = env })
    assert.equal(200, status)
  end)
  teardown(function() server:stop() end)

  local function publish_path(action)
    return server.base .. "/apis/publish?action=" .. action
  end

  local function assert_served()
    local status, body = server:json("GET", server.base .. "/envs")
    assert.equal(200, status)
    assert.equal(2, body.total)
  end

  -- Sends a hostile request with send(sock), checks that a request on
  -- another connection is served while it is open, then reads everything
  -- the server sends until it closes. Returns the one answer.
  local function expect_one_error(status, send)
    local rss_before = io_.rss_kb(server)
    local sock = io_.connect(server)
    send(sock)
    assert_served()
    local data, closed = io_.read_until_close(sock, 10)
    sock:close()
    local answers = io_.parse_responses(data)
    assert.is_true(closed, "the server kept the connection open")
    assert.equal(1, #answers)
    local answer = answers[1]
    assert.equal(status, answer.status)
    assert.equal("close", answer.headers["connection"])
    assert.equal("APIG.2000", answer.json.error_code)
    assert.is_string(answer.json.error_msg)
    assert.matches("^application/json", answer.headers["content-type"])
    assert.matches("^%x+$", answer.headers["x-request-id"])
    assert.is_true(io_.rss_kb(server) - rss_before < RSS_SLACK_KB,
      "server memory grew by more than " .. RSS_SLACK_KB .. " KiB")
    return answer
  end

  local function post_head(length_lines)
    local lines = { "POST " .. publish_path("online") .. " HTTP/1.1",
                    "Host: 127.0.0.1", "X-Auth-Token: dev-token" }
    for _, line in ipairs(length_lines) do lines[#lines + 1] = line end
    return table.concat(lines, "\r\n") .. "\r\n\r\n"
  end

  it("answers a huge Content-Length with 413 at once", function()
    local answer = expect_one_error(413, function(sock)
      assert(sock:send(post_head { "Content-Length: 99999999999" } ..
        '{"apis":'))
    end)
    assert.matches("1048576", answer.json.error_msg)
  end)

  it("rejects a Content-Length above 64 bits", function()
    expect_one_error(400, function(sock)
      assert(sock:send(post_head {
        "Content-Length: 18446744073709551616" } .. "{}"))
    end)
  end)

  it("rejects a negative Content-Length", function()
    expect_one_error(400, function(sock)
      assert(sock:send(post_head { "Content-Length: -5" } .. "{}"))
    end)
  end)

  it("rejects two different Content-Length headers", function()
    expect_one_error(400, function(sock)
      assert(sock:send(post_head { "Content-Length: 2",
        "Content-Length: 3" } .. "{} "))
    end)
  end)

  it("rejects a chunk size beyond 64 bits", function()
    expect_one_error(400, function(sock)
      assert(sock:send(post_head { "Transfer-Encoding: chunked" } ..
        "FFFFFFFFFFFFFFFFFF\r\n{}"))
    end)
  end)

  it("rejects transfer codings other than chunked alone", function()
    local body = t.json.encode { apis = { api }, env_id = env }
    local chunked = ("%x\r\n%s\r\n0\r\n\r\n"):format(#body, body)
    for _, coding in ipairs { "gzip, chunked", "chunked, chunked",
                              "identity" } do
      local answer = expect_one_error(400, function(sock)
        assert(sock:send(post_head { "Transfer-Encoding: " .. coding } ..
          chunked))
      end)
      assert.matches("Transfer%-Encoding", answer.json.error_msg)
    end
  end)

  it("rejects Content-Length with chunked and never runs the hidden request",
    function()
      local hidden = io_.request_bytes("POST", publish_path("offline"), {},
        t.json.encode { apis = { api }, env_id = env })
      local smuggled = "0\r\n\r\n" .. hidden
      expect_one_error(400, function(sock)
        assert(sock:send(post_head { "Content-Length: " .. #smuggled,
          "Transfer-Encoding: chunked" } .. smuggled))
      end)
      local again = expect_one_error(400, function(sock)
        assert(sock:send(post_head { "Transfer-Encoding: chunked",
          "Content-Length: " .. #smuggled } .. smuggled))
      end)
      assert.matches("Content%-Length", again.json.error_msg)
      socket.sleep(0.2)
      local status, list = server:json("GET", server.base ..
        "/apis?env_id=" .. env)
      assert.equal(200, status)
      assert.equal(1, list.total)
      assert.equal(api, list.apis[1].id)
    end)

  it("answers 20 000 header lines with 431", function()
    local lines = {}
    for i = 1, 20000 do lines[i] = "X-Filler-" .. i .. ": x" end
    expect_one_error(431, function(sock)
      io_.send_all(sock, post_head(lines))
    end)
  end)

  it("answers a 200 KB X-Auth-Token with 431", function()
    local head = "GET " .. server.base .. "/envs HTTP/1.1\r\n" ..
      "Host: 127.0.0.1\r\nX-Auth-Token: " .. string.rep("t", 200000) ..
      "\r\n\r\n"
    local answer = expect_one_error(431, function(sock)
      io_.send_all(sock, head)
    end)
    assert.matches("16384", answer.json.error_msg)
  end)

  -- A valid JSON body of about `size` bytes: a remark padded with spaces
  -- in an otherwise normal batch.
  local function big_body(size)
    local start = '{"apis":["' .. api .. '"],"env_id":"' .. env ..
      '","remark":"x"'
    return start .. string.rep(" ", size - #start - 1) .. "}"
  end

  it("answers a declared 20 MB body with 413 before it is sent", function()
    local body = big_body(20 * 1024 * 1024)
    local rss_before = io_.rss_kb(server)
    local sock = io_.connect(server)
    assert(sock:send(post_head { "Content-Length: " .. #body }))
    -- The whole answer arrives before any byte of the body is sent.
    local status, text, headers = t.read_response(sock)
    assert.equal(413, status)
    assert.equal("close", headers["connection"])
    assert.equal("APIG.2000", t.json.decode(text).error_code)
    assert_served()
    -- The server drops what still arrives, then closes.
    io_.send_all(sock, body)
    local rest, closed = io_.read_until_close(sock, 10)
    sock:close()
    assert.equal("", rest)
    assert.is_true(closed)
    assert.is_true(io_.rss_kb(server) - rss_before < RSS_SLACK_KB)
  end)

  it("answers a 20 MB chunked body with 413 after the limit", function()
    local body = big_body(20 * 1024 * 1024)
    local rss_before = io_.rss_kb(server)
    local sock = io_.connect(server)
    assert(sock:send(post_head { "Transfer-Encoding: chunked" }))
    local piece = 64 * 1024
    local ok = true
    for from = 1, #body, piece do
      local chunk = body:sub(from, from + piece - 1)
      ok = io_.send_all(sock, string.format("%x\r\n", #chunk) .. chunk ..
        "\r\n")
      if not ok then break end
    end
    assert_served()
    local data = io_.read_until_close(sock, 10)
    sock:close()
    local answers = io_.parse_responses(data)
    assert.equal(1, #answers)
    assert.equal(413, answers[1].status)
    assert.equal("APIG.2000", answers[1].json.error_code)
    assert.is_true(io_.rss_kb(server) - rss_before < RSS_SLACK_KB)
  end)
end)
