-- Policy reloads: on a file change and on SIGHUP, between requests only,
-- and never to a file that fails to load; a bad file at start stops the
-- server with the file, line and message.
local t = require "apig_test"
local fx = require "apig_policy_fixture"

local function tagger(tag)
  return ("return { rewrite_remark = function(r) return %q end }\n")
    :format(tag)
end

-- Writes text next to path and renames it over path, as editors do.
local function replace(path, text)
  t.write_file(path .. ".tmp", text)
  assert(os.rename(path .. ".tmp", path))
end

-- Waits until the server's log has grown count lines matching pattern.
local function wait_log(server, pattern, count)
  for _ = 1, 200 do
    local seen = 0
    for _ in server:log():gmatch(pattern) do seen = seen + 1 end
    if seen >= count then return true end
    t.sleep(0.02)
  end
  return false
end

local function openapi_with(count)
  local paths = {}
  for i = 1, count do
    paths[("/r/%04d"):format(i)] = { get = {
      operationId = ("op%04d"):format(i),
      responses = { ["200"] = { description = "ok" } } } }
  end
  return t.json.encode({ openapi = "3.0.0",
    info = { title = "reload", version = "1" }, paths = paths })
end

describe("policy reload", function()
  local server, path, api

  local function remark()
    local status, body = server:batch("online",
      { apis = { api }, env_id = t.RELEASE, remark = "r" })
    assert.equal(200, status)
    return body.success[1].remark
  end

  before_each(function()
    server, path = fx.start(tagger("v1"))
    api = fx.create_apis(server, "reloads", { "one" }).one
  end)
  after_each(function() server:stop() end)

  it("follows a file renamed into place", function()
    assert.equal("v1", remark())
    replace(path, tagger("v2"))
    assert.is_true(wait_log(server, "policy reloaded", 1))
    assert.equal("v2", remark())
    replace(path, tagger("v3"))
    assert.is_true(wait_log(server, "policy reloaded", 2))
    assert.equal("v3", remark())
  end)

  it("follows a file rewritten in place", function()
    t.write_file(path, tagger("v2"))
    assert.is_true(wait_log(server, "policy reloaded", 1))
    assert.equal("v2", remark())
  end)

  it("keeps the old policy when the file breaks", function()
    replace(path, "local p = {\nreturn p\n")
    assert.is_true(wait_log(server, "policy reload failed", 1))
    assert.equal("v1", remark())
    assert.truthy(server:log():find(path .. ":2:", 1, true))
    replace(path, tagger("v2"))
    assert.is_true(wait_log(server, "policy reloaded", 1))
    assert.equal("v2", remark())
  end)

  it("keeps the old policy on SIGHUP with a broken file", function()
    replace(path, "return { map_env = 42 }\n")
    assert.is_true(wait_log(server, "policy reload failed", 1))
    server:signal("HUP")
    assert.is_true(wait_log(server, "policy reload failed", 2))
    assert.truthy(server:log():find(
      "policy.map_env must be a function, got number", 1, true))
    assert.equal("v1", remark())
  end)

  it("reloads a fixed file on SIGHUP", function()
    t.write_file(path .. ".next", tagger("v2"))
    -- A copy through the shell is one write after a truncate.
    os.execute("cat " .. t.shell_quote(path .. ".next") .. " > " ..
      t.shell_quote(path))
    assert.is_true(wait_log(server, "policy reloaded", 1))
    server:signal("HUP")
    assert.is_true(wait_log(server, "policy reloaded", 2))
    assert.equal("v2", remark())
  end)
end)

describe("policy reload during batches", function()
  local server, path, ids

  setup(function()
    local dir = t.tmpdir()
    t.write_file(dir .. "/catalogue.json", openapi_with(1000))
    server, path = fx.start(tagger("v1"), {
      import = { dir .. "/catalogue.json" }, args = { "--fsync", "off" } })
    local status, body = server:json("GET", server.base .. "/apis?limit=500")
    assert.equal(200, status)
    ids = {}
    for offset = 0, 500, 500 do
      status, body = server:json("GET", server.base ..
        "/apis?limit=500&offset=" .. offset)
      for _, item in ipairs(body.apis) do ids[#ids + 1] = item.id end
    end
    assert.equal(1000, #ids)
  end)
  teardown(function() server:stop() end)

  it("never splits a batch between two policies", function()
    -- A writer in the background swaps v1 and v2 every 60 to 120 ms,
    -- longer than the 50 ms debounce, half by rename, half in place.
    local stop = t.tmpdir() .. "/stop"
    local script = ([[
      i=0
      while [ ! -e %s ]; do
        i=$((i + 1))
        tag=v$((i %% 2 + 1))
        text="return { rewrite_remark = function(r) return \"$tag\" end }"
        if [ $((i %% 4)) -lt 2 ]; then
          printf '%%s\n' "$text" > %s.tmp && mv %s.tmp %s
        else
          printf '%%s\n' "$text" > %s
        fi
        sleep 0.0$((6 + i %% 7))
      done]]):format(t.shell_quote(stop), path, path, path, path)
    os.execute("(" .. script .. ") >/dev/null 2>&1 &")
    local seen, batches = {}, 0
    local deadline = os.time() + 4
    while os.time() < deadline or batches < 40 do
      local status, body = server:batch("online",
        { apis = ids, env_id = t.RELEASE, remark = "r" })
      assert.equal(200, status)
      assert.equal(1000, #body.success)
      local tag = body.success[1].remark
      for i = 2, #body.success do
        if body.success[i].remark ~= tag then
          error(("batch %d mixes %s and %s"):format(batches + 1, tag,
            body.success[i].remark))
        end
      end
      seen[tag] = (seen[tag] or 0) + 1
      batches = batches + 1
    end
    t.write_file(stop, "")
    assert.truthy(seen.v1, "no batch saw v1")
    assert.truthy(seen.v2, "no batch saw v2")
    local reloads = 0
    for _ in server:log():gmatch("policy reloaded") do
      reloads = reloads + 1
    end
    assert.is_true(reloads >= 5, "only " .. reloads .. " reloads")
    print(("\n%d batches of 1000: %d with v1, %d with v2, %d reloads")
      :format(batches, seen.v1, seen.v2, reloads))
  end)
end)

describe("policy at start", function()
  local function start_error(source)
    local dir = t.tmpdir()
    local path = fx.write_policy(source, dir)
    local ok, err = pcall(t.start, { args = { "--policy", path } })
    assert.is_false(ok)
    return tostring(err), path
  end

  it("stops on a syntax error with file and line", function()
    local err, path = start_error("local p = {}\nfunction p.authorize(\n" ..
      "return p\n")
    assert.truthy(err:find("apig-server: cannot start: " .. path ..
      ":3: <name> or '...' expected near 'return'", 1, true), err)
  end)

  it("stops on a runtime error with file and line", function()
    local err, path = start_error("local x\nreturn x.y\n")
    assert.truthy(err:find("apig-server: cannot start: " .. path ..
      ":2: attempt to index a nil value (local 'x')", 1, true), err)
  end)

  it("stops on a policy that is not a table", function()
    local err, path = start_error("return 42\n")
    assert.truthy(err:find("apig-server: cannot start: " .. path ..
      ": the policy must return a table, got number", 1, true), err)
  end)

  it("stops on a missing file", function()
    local ok, err = pcall(t.start, { args = { "--policy",
      "/nonexistent/policy.lua" } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find(
      "apig-server: cannot start: cannot open /nonexistent/policy.lua",
      1, true), tostring(err))
  end)
end)
