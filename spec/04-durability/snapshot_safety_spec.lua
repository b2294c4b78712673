-- Saving a snapshot safely: a full disk, a crash at each step of a save,
-- and the system calls a save makes.
local t = require "apig_test"
local socket = require "socket"

local function files(dir)
  local list = {}
  for name in t.capture("ls -1 '" .. dir .. "' 2>/dev/null"):gmatch("[^\n]+")
  do
    list[#list + 1] = name
  end
  return list
end

local function count(dir, pattern)
  local n = 0
  for _, name in ipairs(files(dir)) do
    if name:match(pattern) then n = n + 1 end
  end
  return n
end

local SNAPSHOT = "^snapshot%-%x+%.apig$"
local TEMP = "%.tmp%-"

-- Waits until the log since the last start matches pattern.
local function wait_log(server, pattern, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while socket.gettime() < deadline do
    if server:log():match(pattern) then return true end
    socket.sleep(0.02)
  end
  return false
end

local function publish(server, ids, remark)
  return server:batch("online", { apis = ids, env_id = t.RELEASE,
                                  remark = remark })
end

local function newest_remark(server, id)
  local status, versions = server:json("GET", server.base ..
    "/apis/publish/" .. id .. "?env_id=" .. t.RELEASE)
  assert.equal(200, status)
  return versions.api_versions[1] and versions.api_versions[1].remark
end

describe("snapshot on a full disk", function()
  local mount_dir

  after_each(function()
    if mount_dir then os.execute("umount '" .. mount_dir .. "' 2>/dev/null") end
  end)

  it("fails cleanly, keeps the old snapshot and works once space is back",
    function()
      mount_dir = t.tmpdir()
      if not os.execute("mount -t tmpfs -o size=1m tmpfs '" .. mount_dir ..
                        "' 2>/dev/null") then
        print("skipped: mounting a tmpfs is not permitted here")
        mount_dir = nil
        return
      end
      local server = t.start { data_dir = mount_dir .. "/data",
                               args = { "--journal-max", "100000000" } }
      local group = server:create_group("full")
      local ids = {}
      for i = 1, 120 do ids[i] = server:create_api(group, "full_api" .. i) end
      assert.equal(200, (publish(server, ids, "before")))
      server:signal("USR1")
      assert.is_true(wait_log(server, "written to"))
      local old = files(server.data_dir)
      -- Leave about 24 KiB: journal records fit, a snapshot does not.
      local free = tonumber(t.capture("df -k --output=avail '" .. mount_dir ..
                                      "' | tail -1"))
      os.execute(("dd if=/dev/zero of='%s/filler' bs=1k count=%d " ..
                  "2>/dev/null"):format(mount_dir, free - 24))
      server:signal("USR1")
      assert.is_true(wait_log(server, "snapshot of record %d+ failed at " ..
                              "write: No space left on device"))
      assert.equal(1, count(server.data_dir, SNAPSHOT))
      assert.equal(0, count(server.data_dir, TEMP))
      local kept
      for _, name in ipairs(old) do
        if name:match(SNAPSHOT) then kept = name end
      end
      assert.is_not_nil(t.read_file(server.data_dir .. "/" .. kept))

      -- Publishes that fit still work; the rest fail with APIG.9999.
      local ok, failed = 0, 0
      for i = 1, 40 do
        local status, body = publish(server, { ids[i] }, "full" .. i)
        if status == 200 then
          ok = ok + 1
        else
          assert.equal(500, status)
          assert.equal("APIG.9999", body.error_code)
          failed = failed + 1
        end
      end
      assert.is_true(ok > 0)
      os.remove(mount_dir .. "/filler")
      local status = publish(server, ids, "after")
      assert.equal(200, status)
      server:signal("USR1")
      assert.is_true(wait_log(server, "written to .*written to"))
      assert.equal(0, server:stop())
      server:restart()
      assert.equal("after", newest_remark(server, ids[1]))
      assert.equal(0, server:stop())
      print(("full disk: %d publishes fit, %d failed with APIG.9999"):format(
        ok, failed))
    end)
end)

describe("a crash during a snapshot", function()
  for _, step in ipairs { "write", "fsync", "rename", "dirsync" } do
    it("before its " .. step .. " keeps every acknowledged change",
      function()
        local server = t.start { env = { "APIG_FAULT_INJECT=pause:" .. step } }
        local group = server:create_group("step")
        local ids = {}
        for i = 1, 5 do ids[i] = server:create_api(group, "step_api" .. i) end
        assert.equal(200, (publish(server, ids, "first")))
        server:signal("USR1")
        socket.sleep(0.5) -- the child is now asleep before `step`
        if step == "dirsync" then
          assert.equal(0, count(server.data_dir, TEMP))
        else
          assert.equal(1, count(server.data_dir, TEMP))
        end
        assert.equal(200, (publish(server, ids, "during")))
        server:kill()
        server.opts.env = nil
        server:restart()
        for _, id in ipairs(ids) do
          assert.equal("during", newest_remark(server, id))
        end
        assert.equal(0, count(server.data_dir, TEMP))
        assert.equal(0, server:stop())
      end)
  end
end)

describe("a snapshot under strace", function()
  it("writes a temporary file, fsyncs, renames, fsyncs the folder",
    function()
      if not os.execute("command -v strace >/dev/null 2>&1") then
        print("skipped: strace is not installed")
        return
      end
      local server = t.start {}
      local group = server:create_group("traced")
      server:create_api(group, "traced_api")
      local trace = t.tmpdir() .. "/trace"
      os.execute(("strace -f -qq -o '%s' -e trace=openat,rename,fsync," ..
        "fdatasync,write,close -p %d >/dev/null 2>&1 &"):format(trace,
        server.pid))
      socket.sleep(0.5)
      server:signal("USR1")
      assert.is_true(wait_log(server, "written to"))
      socket.sleep(0.2)
      local text = t.read_file(trace) or ""
      if text == "" then
        print("skipped: strace could not attach (ptrace not permitted)")
        server:stop()
        return
      end
      os.execute("pkill -f 'strace -f -qq -o " .. trace .. "' 2>/dev/null")
      -- The snapshot child's calls, in order.
      local tmp_fd = text:match('openat%([^\n]-snapshot%-%x+%.apig%.tmp%-' ..
        '[^"]*", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600%) = (%d+)')
      assert.is_not_nil(tmp_fd, text)
      local open_at = text:find("snapshot%-%x+%.apig%.tmp%-")
      local write_at = text:find("write%(" .. tmp_fd .. ",", open_at)
      local fsync_at = text:find("fsync%(" .. tmp_fd .. "%)", write_at)
      local rename_at = text:find('rename%("[^"]*%.tmp%-[^"]*", "[^"]*' ..
        'snapshot%-%x+%.apig"%)', fsync_at)
      local dir_at = text:find("O_DIRECTORY", rename_at)
      local dir_fsync_at = text:find("fsync%(", dir_at)
      assert.is_not_nil(write_at)
      assert.is_not_nil(fsync_at)
      assert.is_not_nil(rename_at)
      assert.is_not_nil(dir_at)
      assert.is_not_nil(dir_fsync_at)
      -- The final name is never opened for writing.
      assert.is_nil(text:match('openat%([^\n]-snapshot%-%x+%.apig", ' ..
                               'O_WRONLY'))
      assert.equal(0, server:stop())
    end)
end)
