-- SIGTERM under load: requests in flight are answered, the server writes
-- a final snapshot and exits 0, and every acknowledged change survives.
local socket = require "socket"
local t = require "apig_test"
local io_ = require "hostile_io"

local CONNECTIONS = 8
local IN_FLIGHT = 5
local PIPELINED = 20

-- Name, inode and modification time of the newest snapshot file in dir,
-- or nil when there is none. Snapshot names carry the record sequence in
-- fixed-width hex, so the last name in sorted order is the newest.
local function newest_snapshot(dir)
  local out = t.capture("cd " .. t.shell_quote(dir) .. " && " ..
    "ls snapshot-*.apig 2>/dev/null | sort | tail -1 | " ..
    "xargs -r stat -c '%n %i %Y'")
  return out ~= "" and out or nil
end

describe("SIGTERM during load", function()
  it("finishes requests in flight and keeps what it acknowledged",
    function()
      local server = t.start {}
      local group = server:create_group("shutdown")
      local apis = {}
      for i = 1, CONNECTIONS do
        apis[i] = server:create_api(group, "shutdown_api" .. i)
      end
      local stamp_before = newest_snapshot(server.data_dir)
      socket.sleep(1.1) -- so a new snapshot has a later time stamp

      local function publish(c, n)
        return io_.request_bytes("POST", server.base ..
          "/apis/publish?action=online", {}, t.json.encode {
            apis = { apis[c] }, env_id = t.RELEASE,
            remark = "c" .. c .. "-n" .. n })
      end

      -- Each connection publishes its own API PIPELINED times, each with
      -- its own remark; all are answered and the connections stay open.
      local socks, last_remark = {}, {}
      for c = 1, CONNECTIONS do
        socks[c] = io_.connect(server)
        local parts = {}
        for n = 1, PIPELINED do parts[n] = publish(c, n) end
        io_.send_all(socks[c], table.concat(parts))
      end
      for c, sock in ipairs(socks) do
        for n = 1, PIPELINED do
          local status, text, headers = t.read_response(sock)
          assert.equal(200, status)
          assert.equal("keep-alive", headers["connection"])
          assert.equal("c" .. c .. "-n" .. n,
            t.json.decode(text).success[1].remark)
        end
        last_remark[c] = "c" .. c .. "-n" .. PIPELINED
      end

      -- The first IN_FLIGHT connections are in the middle of a request
      -- when the signal arrives; the others are idle.
      local halves = {}
      for c = 1, IN_FLIGHT do
        local request = publish(c, PIPELINED + 1)
        local cut = #request - 10
        halves[c] = request:sub(cut + 1)
        assert(socks[c]:send(request:sub(1, cut)))
      end
      socket.sleep(0.2)
      server:signal("TERM")
      socket.sleep(0.3)
      for c = 1, IN_FLIGHT do assert(socks[c]:send(halves[c])) end

      for c, sock in ipairs(socks) do
        local data, closed = io_.read_until_close(sock, 30)
        sock:close()
        assert.is_true(closed)
        local answers = io_.parse_responses(data)
        if c <= IN_FLIGHT then
          assert.equal(1, #answers)
          assert.equal(200, answers[1].status)
          assert.equal("close", answers[1].headers["connection"])
          last_remark[c] = "c" .. c .. "-n" .. (PIPELINED + 1)
          assert.equal(last_remark[c], answers[1].json.success[1].remark)
        else
          assert.equal("", data)
        end
      end

      assert.equal(0, server:wait_exit(30))
      local stamp_after = newest_snapshot(server.data_dir)
      assert.is_not_nil(stamp_after)
      assert.are_not.equal(stamp_before, stamp_after)
      assert.matches("stopped", server:log())

      server:restart()
      for c = 1, CONNECTIONS do
        local status, versions = server:json("GET", server.base ..
          "/apis/publish/" .. apis[c] .. "?env_id=" .. t.RELEASE)
        assert.equal(200, status)
        assert.equal(last_remark[c], versions.api_versions[1].remark)
      end
      assert.equal(0, server:stop())
    end)

  it("does not wait the whole request timeout for a slow client",
    function()
      local server = t.start {}
      local slow = server:connect()
      -- Half a request: the request timeout (30 s) is far away.
      assert(slow:send("POST " .. server.base .. "/envs HTTP/1.1\r\n" ..
        "Host: x\r\nX-Auth-Token: a\r\nContent-Length: 100\r\n\r\n{"))
      t.sleep(0.2)
      local start = t.now()
      server:signal("TERM")
      local status = server:wait_exit(15)
      local took = t.now() - start
      assert.equal(0, status)
      assert.is_true(took < 5, ("the stop took %.1f s"):format(took))
      slow:settimeout(2)
      local answer = slow:receive("*a") or ""
      assert.matches("^HTTP/1.1 503", answer)
      assert.matches('"APIG.9999"', answer)
      slow:close()
    end)
end)
