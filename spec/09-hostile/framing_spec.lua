-- Pipelined requests, requests split across reads, and chunked bodies
-- against a real server over raw sockets.
local t = require "apig_test"
local io_ = require "hostile_io"

describe("request framing", function()
  local server, test_env, apis

  setup(function()
    server = t.start {}
    test_env = server:create_env("TEST")
    local group = server:create_group("framing")
    apis = {}
    for i = 1, 4 do
      apis[i] = server:create_api(group, "framing_api" .. i)
    end
  end)
  teardown(function() server:stop() end)

  local function publish_bytes(ids, remark, env)
    local body = t.json.encode { apis = ids, env_id = env or test_env,
                                 remark = remark }
    return io_.request_bytes("POST", server.base ..
      "/apis/publish?action=online", {}, body)
  end

  -- Sends bytes (a list of pieces) and reads answers until the server
  -- closes; the last request asks for the close.
  local function exchange(pieces, pause)
    local sock = io_.connect(server)
    io_.send_pieces(sock, pieces, pause)
    local data = io_.read_until_close(sock)
    sock:close()
    return io_.parse_responses(data)
  end

  local function closing_get(target)
    return io_.request_bytes("GET", target, { "Connection: close" })
  end

  it("answers two pipelined batches in order", function()
    local both = publish_bytes({ apis[1] }, "first-remark") ..
      publish_bytes({ apis[2] }, "second-remark") ..
      closing_get("/healthz")
    local answers = exchange({ both })
    assert.equal(3, #answers)
    assert.equal(200, answers[1].status)
    assert.equal(200, answers[2].status)
    assert.equal(apis[1], answers[1].json.success[1].api_id)
    assert.equal("first-remark", answers[1].json.success[1].remark)
    assert.equal(apis[2], answers[2].json.success[1].api_id)
    assert.equal("second-remark", answers[2].json.success[1].remark)
    assert.is_nil(answers[2].body:find("first-remark", 1, true))
    assert.is_nil(answers[1].body:find("second-remark", 1, true))
    assert.are_not.equal(answers[1].headers["x-request-id"],
      answers[2].headers["x-request-id"])
  end)

  it("answers batches that arrive during a journal flush in order",
    function()
      -- Pieces of 50 bytes: later requests arrive while earlier ones wait
      -- for their flush, and the server keeps them in order.
      local bytes = publish_bytes({ apis[1] }, "piece-one") ..
        publish_bytes({ apis[2] }, "piece-two") ..
        publish_bytes({ apis[1] }, "piece-three") ..
        closing_get("/healthz")
      local pieces = {}
      for i = 1, #bytes, 50 do pieces[#pieces + 1] = bytes:sub(i, i + 49) end
      local answers = exchange(pieces, 0.0005)
      assert.equal(4, #answers)
      local expected = { { apis[1], "piece-one" }, { apis[2], "piece-two" },
                         { apis[1], "piece-three" } }
      for i, want in ipairs(expected) do
        assert.equal(200, answers[i].status)
        assert.equal(want[1], answers[i].json.success[1].api_id)
        assert.equal(want[2], answers[i].json.success[1].remark)
      end
      assert.equal(200, answers[4].status)
    end)

  it("answers every pipelined batch when the client half-closes",
    function()
      -- The server reads the end of input while a batch waits for its
      -- journal flush, and still responds to it and to the ones after it.
      for count = 1, 3 do
        local bytes = ""
        for i = 1, count do
          bytes = bytes .. publish_bytes({ apis[i] }, "half-close-" .. i)
        end
        local sock = io_.connect(server)
        assert(sock:send(bytes))
        assert(sock:shutdown("send"))
        local answers = io_.parse_responses(io_.read_until_close(sock))
        sock:close()
        assert.equal(count, #answers)
        for i = 1, count do
          assert.equal(200, answers[i].status)
          assert.equal("half-close-" .. i, answers[i].json.success[1].remark)
        end
      end
    end)

  it("answers requests sent one byte at a time like whole ones", function()
    local three = io_.request_bytes("GET", server.base .. "/envs") ..
      io_.request_bytes("GET", server.base .. "/apis/" .. apis[3]) ..
      closing_get(server.base .. "/apis?limit=2")
    local whole = exchange({ three })
    local bytes = {}
    for i = 1, #three do bytes[i] = three:sub(i, i) end
    local split = exchange(bytes, 0)
    assert.equal(3, #whole)
    assert.equal(3, #split)
    for i = 1, 3 do
      assert.equal(200, split[i].status)
      assert.equal(whole[i].status, split[i].status)
      assert.equal(whole[i].body, split[i].body)
    end
  end)

  it("answers a request split inside its headers like a whole one",
    function()
      local body = t.json.encode { apis = { apis[4] }, env_id = test_env }
      local request = "POST " .. server.base ..
        "/apis/publish?action=offline HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
        "X-Auth-Token: dev-token\r\nConnection: close\r\n" ..
        "Content-Length: " .. #body .. "\r\n\r\n" .. body
      local whole = exchange({ request })
      local name_cut = request:find("Auth-Token", 1, true)
      local value_cut = request:find("dev-token", 1, true) + 3
      local length_cut = request:find("Content-Length: ", 1, true) + 16
      local split = exchange({ request:sub(1, name_cut),
        request:sub(name_cut + 1, value_cut),
        request:sub(value_cut + 1, length_cut),
        request:sub(length_cut + 1) }, 0.05)
      assert.equal(1, #whole)
      assert.equal(1, #split)
      assert.equal(200, whole[1].status)
      assert.equal("APIG.3015", whole[1].json.failure[1].error_code)
      assert.equal(whole[1].body, split[1].body)
    end)

  it("stores a remark whose chunks split its UTF-8 bytes", function()
    local remark = "发布"
    local body = t.json.encode { apis = { apis[3] }, env_id = test_env,
                                 remark = remark }
    local in_string = body:find(apis[3], 1, true) + 5
    local in_remark = body:find(remark, 1, true)
    local cuts = { in_string, in_remark, in_remark + 1, in_remark + 4 }
    local head = "POST " .. server.base ..
      "/apis/publish?action=online HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
      "X-Auth-Token: dev-token\r\nTransfer-Encoding: chunked\r\n\r\n"
    local chunks = io_.chunked(body, cuts)
    local pieces = { head }
    for piece in chunks:gmatch("[^\n]*\n") do pieces[#pieces + 1] = piece end
    pieces[#pieces + 1] = "0\r\n\r\n"
    pieces[#pieces + 1] = closing_get("/healthz")
    local answers = exchange(pieces, 0.02)
    assert.equal(2, #answers)
    assert.equal(200, answers[1].status)
    assert.equal(remark, answers[1].json.success[1].remark)
    local status, versions = server:json("GET", server.base ..
      "/apis/publish/" .. apis[3] .. "?env_id=" .. test_env)
    assert.equal(200, status)
    assert.equal(remark, versions.api_versions[1].remark)
  end)

  it("accepts chunk extensions and a trailer", function()
    local remark = "发布"
    local body = t.json.encode { apis = { apis[4] }, env_id = t.RELEASE,
                                 remark = remark }
    local cut = body:find(remark, 1, true) + 1
    local request = "POST " .. server.base ..
      "/apis/publish?action=online HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
      "X-Auth-Token: dev-token\r\nTransfer-Encoding: chunked\r\n" ..
      "Connection: close\r\n\r\n" ..
      io_.chunked(body, { cut }, ";name=value") ..
      "0;last=yes\r\nX-Checksum: none\r\n\r\n"
    local answers = exchange({ request })
    assert.equal(1, #answers)
    assert.equal(200, answers[1].status)
    assert.equal(remark, answers[1].json.success[1].remark)
    local status, versions = server:json("GET", server.base ..
      "/apis/publish/" .. apis[4] .. "?env_id=" .. t.RELEASE)
    assert.equal(200, status)
    assert.equal(remark, versions.api_versions[1].remark)
  end)
end)
