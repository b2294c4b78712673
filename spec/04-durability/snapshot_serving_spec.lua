-- Snapshots while serving: a snapshot holds a whole batch or none of it,
-- concurrent save requests make one final file each time, and a restart
-- never answers from a half-loaded store.
local t = require "apig_test"
local socket = require "socket"

local function names(dir)
  local list = {}
  for name in t.capture("ls -1 '" .. dir .. "' 2>/dev/null"):gmatch("[^\n]+")
  do
    list[#list + 1] = name
  end
  return list
end

local function snapshots_and_temps(dir)
  local finals, temps = {}, 0
  for _, name in ipairs(names(dir)) do
    if name:match("^snapshot%-%x+%.apig$") then finals[#finals + 1] = name end
    if name:match("%.tmp%-") then temps = temps + 1 end
  end
  return finals, temps
end

-- Creates a group of n APIs in one OpenAPI import; returns their ids.
local function import_apis(server, title, n)
  local paths = {}
  for i = 1, n do
    paths["/" .. title .. "/" .. i] = {
      get = { operationId = title .. "_" .. i,
              responses = { ["200"] = { description = "ok" } } } }
  end
  local status, answer = server:import_json(t.json.encode {
    swagger = "2.0", info = { title = title, version = "1" },
    paths = paths })
  assert.equal(200, status)
  assert.equal(n, #answer.success)
  local ids = {}
  for i, item in ipairs(answer.success) do ids[i] = item.id end
  return ids
end

-- Counts the APIs online in RELEASE, through the list call.
local function count_online(server)
  local online, offset, total = 0, 0, nil
  repeat
    local status, page = server:json("GET", server.base ..
      "/apis?limit=500&offset=" .. offset)
    assert.equal(200, status)
    total = page.total
    for _, api in ipairs(page.apis) do
      if (api.run_env_id or ""):find(t.RELEASE, 1, true) then
        online = online + 1
      end
    end
    offset = offset + 500
  until offset >= total
  return online, total
end

-- Starts a server on a copy of the newest snapshot alone (no journal).
local function start_on_snapshot(dir)
  local finals = snapshots_and_temps(dir)
  table.sort(finals)
  local copy = t.tmpdir() .. "/data"
  os.execute(("mkdir -p '%s' && cp '%s/%s' '%s/'"):format(copy, dir,
    finals[#finals], copy))
  return t.start { data_dir = copy }
end

local function wait_idle(dir, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while socket.gettime() < deadline do
    local finals, temps = snapshots_and_temps(dir)
    if #finals == 1 and temps == 0 then return finals, temps end
    socket.sleep(0.02)
  end
  return snapshots_and_temps(dir)
end

describe("a snapshot during a 1000-id batch", function()
  it("holds all of the batch or none of it", function()
    local server = t.start {}
    local ids = import_apis(server, "batch", 1000)
    for round = 1, 4 do
      local action = round % 2 == 1 and "online" or "offline"
      local sock = server:connect()
      assert(sock:send(t.format_request("POST", server.base ..
        "/apis/publish?action=" .. action, {}, t.json.encode {
          apis = ids, env_id = t.RELEASE })))
      server:signal("USR1")
      local status = t.read_response(sock)
      sock:close()
      assert.equal(200, status)
      wait_idle(server.data_dir)
      local copy = start_on_snapshot(server.data_dir)
      local online, total = count_online(copy)
      assert.equal(1000, total)
      assert.is_true(online == 0 or online == 1000,
        online .. " of 1000 APIs online in the snapshot")
      if online == 1000 then
        -- Every publication points at a version that exists.
        local status2, versions = copy:json("GET", copy.base ..
          "/apis/publish/" .. ids[500] .. "?env_id=" .. t.RELEASE)
        assert.equal(200, status2)
        assert.equal(1, versions.api_versions[1].status)
      end
      copy:stop()
    end
    assert.equal(0, server:stop())
  end)
end)

describe("manual and periodic snapshots at once", function()
  it("leave exactly one whole final file each time, 50 times", function()
    local server = t.start { args = { "--snapshot-interval", "1" } }
    local group = server:create_group("races")
    local id = server:create_api(group, "race_api")
    for i = 1, 50 do
      assert.equal(200, (server:batch("online", { apis = { id },
        env_id = t.RELEASE, remark = "race" .. i })))
      server:signal("USR1")
      server:signal("USR1")
      socket.sleep(math.random() * 0.05)
      local finals, temps = wait_idle(server.data_dir)
      assert.equal(1, #finals)
      assert.equal(0, temps)
    end
    socket.sleep(1.2) -- let the periodic timer fire at least once more
    local log = server:log()
    assert.is_nil(log:match("snapshot[^\n]*failed"))
    assert.is_not_nil(log:match("folded into it"))
    local copy = start_on_snapshot(server.data_dir)
    local _, versions = copy:json("GET", copy.base .. "/apis/publish/" ..
      id .. "?env_id=" .. t.RELEASE)
    assert.equal("race50", versions.api_versions[1].remark)
    copy:stop()
    assert.equal(0, server:stop())
  end)
end)

describe("a restart with 100 000 versions", function()
  it("answers no request before the store is loaded", function()
    local server = t.start {}
    local groups = {}
    for g = 1, 10 do groups[g] = import_apis(server, "big" .. g, 1000) end
    for round = 1, 10 do
      for _, ids in ipairs(groups) do
        local status = server:batch("online", { apis = ids,
          env_id = t.RELEASE, remark = "r" .. round })
        assert.equal(200, status)
      end
    end
    assert.equal(0, server:stop())

    -- Start on a fixed port and ask as early as the port answers.
    local probe = assert(socket.bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    local log = t.tmpdir() .. "/server.log"
    os.execute(("'%s' --listen 127.0.0.1:%d --data-dir '%s' " ..
      ">'%s' 2>&1 & echo $! >'%s.pid'"):format(t.server_binary, port,
      server.data_dir, log, log))
    local answered = 0
    local deadline = socket.gettime() + 60
    while answered < 20 and socket.gettime() < deadline do
      local sock = socket.tcp()
      sock:settimeout(10)
      if sock:connect("127.0.0.1", port) then
        assert(sock:send(t.format_request("GET", server.base ..
          "/apis?limit=1", {})))
        local status, body = t.read_response(sock)
        assert.equal(200, status)
        assert.equal(10000, t.json.decode(body).total)
        answered = answered + 1
      end
      sock:close()
    end
    assert.equal(20, answered)
    local pid = (t.read_file(log .. ".pid") or ""):match("%d+")
    os.execute("kill -TERM " .. pid)
    print((t.read_file(log) or ""):match("[^\n]*loaded [^\n]*"))
  end)
end)
