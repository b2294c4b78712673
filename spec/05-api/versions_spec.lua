-- Versions: switch (PUT …/apis/publish/{api_id}), show and take offline
-- (…/apis/versions/{version_id}), and GET …/apis/runtime/{api_id}.
local t = require "apig_test"
local c = require "api_checks"

describe("version calls", function()
  local server, base, group, env

  setup(function()
    server = t.start { instances = { "p1:i1" } }
    base = server.base
    group = server:create_group("group_versions")
    env = server:create_env("env_versions")
  end)
  teardown(function() server:stop() end)

  -- Publishes id to env_id with remark; returns the success item.
  local function publish(id, env_id, remark)
    local status, answer = server:batch("online",
      { apis = { id }, env_id = env_id, remark = remark })
    assert.equal(200, status)
    assert.equal(1, #answer.success)
    return answer.success[1]
  end

  local function versions(id, query)
    local status, page = server:json("GET", base .. "/apis/publish/" .. id ..
      (query or ""))
    assert.equal(200, status)
    return page
  end

  local function switch(id, body)
    return server:json("PUT", base .. "/apis/publish/" .. id, body)
  end

  describe("switch", function()
    it("makes an older version effective again", function()
      local id = server:create_api(group, "api_switch")
      local first = publish(id, env, "one")
      local second = publish(id, env, "two")
      local status, item = switch(id, { version_id = first.version_id })
      assert.equal(200, status)
      assert.equal(c.PUBLISH_FIELDS, c.keys(item))
      assert.equal(first.version_id, item.version_id)
      assert.equal("one", item.remark)
      assert.equal(second.publish_id, item.publish_id)
      assert.equal(env, item.env_id)
      assert.is_true(c.fractional(item.publish_time), item.publish_time)
      local page = versions(id)
      assert.equal(2, page.total)
      for _, v in ipairs(page.api_versions) do
        assert.equal(v.version_id == first.version_id and 1 or 2, v.status)
      end
      local runtime
      status, runtime = server:json("GET", base .. "/apis/runtime/" .. id ..
        "?env_id=" .. env)
      assert.equal(first.version_id, runtime.version_id)
    end)

    it("publishes an offline API again with a new publish_id", function()
      local id = server:create_api(group, "api_switch_off")
      local first = publish(id, env, "")
      server:batch("offline", { apis = { id }, env_id = env })
      local status, item = switch(id, { version_id = first.version_id })
      assert.equal(200, status)
      assert.are_not.equal(first.publish_id, item.publish_id)
      local _, shown = server:json("GET", base .. "/apis/" .. id)
      assert.equal(env, shown.run_env_id)
      assert.equal(item.publish_id, shown.publish_id)
      -- The environment now contains a publication, so it cannot be deleted.
      status = server:json("DELETE", base .. "/envs/" .. env)
      assert.equal(403, status)
      server:batch("offline", { apis = { id }, env_id = env })
    end)

    it("rejects bad requests without a change", function()
      local id = server:create_api(group, "api_switch_bad")
      local other = server:create_api(group, "api_switch_other")
      publish(id, t.RELEASE, "")
      local foreign = publish(other, t.RELEASE, "").version_id
      local missing = ("e"):rep(32)
      local cases = {
        { "", 400, "APIG.2000" },
        { "{", 400, "APIG.2000" },
        { {}, 400, "APIG.2001" },
        { { version_id = "" }, 400, "APIG.2001" },
        { { version_id = 5 }, 400, "APIG.2011" },
        { { version_id = missing }, 404, "APIG.3022" },
        { { version_id = foreign }, 404, "APIG.3022" },
      }
      local before = c.state(server, { id, other })
      for _, case in ipairs(cases) do
        local status, body = switch(id, case[1])
        c.is_error(status, body, case[2], case[3])
      end
      assert.equal(before, c.state(server, { id, other }))
      local status, body = switch(id, { version_id = missing })
      assert.equal("The API version does not exist,id:" .. missing,
        body.error_msg)
      status, body = switch(missing, { version_id = foreign })
      c.is_error(status, body, 404, "APIG.3002")
    end)

    it("rejects a version of a deleted environment", function()
      local id = server:create_api(group, "api_switch_gone")
      local gone = server:create_env("env_gone_later")
      local item = publish(id, gone, "")
      server:batch("offline", { apis = { id }, env_id = gone })
      assert.equal(204, (server:request("DELETE", base .. "/envs/" .. gone)))
      local status, body = switch(id, { version_id = item.version_id })
      c.is_error(status, body, 404, "APIG.3003")
      local _, shown = server:json("GET", base .. "/apis/" .. id)
      assert.equal("", shown.run_env_id)
    end)
  end)

  describe("show", function()
    it("returns the frozen definition with its publication", function()
      local id = server:create_api(group, "api_show")
      local item = publish(id, env, "shown")
      local status, v = server:json("GET", base .. "/apis/versions/" ..
        item.version_id)
      assert.equal(200, status)
      assert.equal(id, v.id)
      assert.equal("api_show", v.name)
      assert.equal(item.version_id, v.version_id)
      assert.equal(env, v.run_env_id)
      assert.equal("env_versions", v.run_env_name)
      assert.equal(item.publish_id, v.publish_id)
      assert.equal(group, v.group_id)
      assert.equal("MOCK", v.backend_type)
      assert.is_true(c.whole_seconds(v.publish_time), v.publish_time)
      server:batch("offline", { apis = { id }, env_id = env })
    end)

    it("answers 404 APIG.3022 for an unknown version", function()
      local status, body = server:json("GET", base .. "/apis/versions/" ..
        ("1"):rep(32))
      c.is_error(status, body, 404, "APIG.3022")
    end)
  end)

  describe("take a version offline", function()
    it("takes the API offline when the version is effective", function()
      local id = server:create_api(group, "api_vdel")
      local old = publish(id, t.RELEASE, "old")
      local new = publish(id, t.RELEASE, "new")
      local status, text = server:request("DELETE", base ..
        "/apis/versions/" .. new.version_id)
      assert.equal(204, status)
      assert.equal("", text)
      local page = versions(id)
      assert.equal(2, page.total)
      assert.equal(2, page.api_versions[1].status)
      assert.equal(2, page.api_versions[2].status)
      local body
      status, body = server:json("GET", base .. "/apis/runtime/" .. id)
      c.is_error(status, body, 404, "APIG.3015")
      -- The old version can still be switched to.
      status = switch(id, { version_id = old.version_id })
      assert.equal(200, status)
    end)

    it("leaves a version that is not effective alone", function()
      local id = server:create_api(group, "api_vdel_hist")
      local old = publish(id, t.RELEASE, "old")
      local new = publish(id, t.RELEASE, "new")
      for _ = 1, 2 do
        assert.equal(204, (server:request("DELETE", base ..
          "/apis/versions/" .. old.version_id)))
        local page = versions(id)
        assert.equal(2, page.total)
        assert.equal(new.version_id, page.api_versions[1].version_id)
        assert.equal(1, page.api_versions[1].status)
        assert.equal(old.version_id, page.api_versions[2].version_id)
        assert.equal(2, page.api_versions[2].status)
      end
      -- A retried DELETE of the effective version keeps the history too.
      for _ = 1, 2 do
        assert.equal(204, (server:request("DELETE", base ..
          "/apis/versions/" .. new.version_id)))
      end
      local page = versions(id)
      assert.equal(2, page.total)
      assert.equal(2, page.api_versions[1].status)
      local status, body = server:json("GET", base .. "/apis/versions/" ..
        old.version_id)
      assert.equal(200, status)
      assert.equal(old.version_id, body.version_id)
      status, body = server:json("DELETE", base .. "/apis/versions/nope")
      c.is_error(status, body, 404, "APIG.3022")
    end)
  end)

  describe("runtime", function()
    it("defaults to RELEASE", function()
      local id = server:create_api(group, "api_runtime")
      local item = publish(id, t.RELEASE, "rt")
      local status, rt = server:json("GET", base .. "/apis/runtime/" .. id)
      assert.equal(200, status)
      assert.equal(item.version_id, rt.version_id)
      assert.equal(t.RELEASE, rt.run_env_id)
      assert.equal("RELEASE", rt.run_env_name)
      assert.equal("api_runtime", rt.name)
      local same
      status, same = server:json("GET", base .. "/apis/runtime/" .. id ..
        "?env_id=" .. t.RELEASE)
      assert.equal(rt.version_id, same.version_id)
    end)

    it("answers 404 for unknown APIs and unpublished environments",
      function()
        local id = server:create_api(group, "api_runtime_none")
        local status, body = server:json("GET", base .. "/apis/runtime/" ..
          id)
        c.is_error(status, body, 404, "APIG.3015")
        status, body = server:json("GET", base .. "/apis/runtime/" .. id ..
          "?env_id=" .. env)
        c.is_error(status, body, 404, "APIG.3015")
        status, body = server:json("GET", base .. "/apis/runtime/" ..
          ("2"):rep(32))
        c.is_error(status, body, 404, "APIG.3002")
        status, body = server:json("GET", base .. "/apis/runtime/" .. id ..
          "?env_id=" .. ("3"):rep(32))
        c.is_error(status, body, 404, "APIG.3003")
      end)
  end)

  describe("history", function()
    it("keeps 10 versions per environment, newest first", function()
      local id = server:create_api(group, "api_history")
      local ids = {}
      for i = 1, 12 do
        ids[i] = publish(id, t.RELEASE, ("v%d"):format(i)).version_id
      end
      local page = versions(id, "?env_id=" .. t.RELEASE)
      assert.equal(10, page.total)
      for i, v in ipairs(page.api_versions) do
        assert.equal(c.VERSION_FIELDS, c.keys(v))
        assert.equal(ids[13 - i], v.version_id)
        assert.equal(i == 1 and 1 or 2, v.status)
        assert.is_true(c.whole_seconds(v.publish_time))
        assert.matches("^%d+$", v.version_no)
        assert.equal(14, #v.version_no)
      end
      local paged = versions(id, "?limit=3&offset=9")
      assert.equal(1, paged.size)
      assert.equal(ids[3], paged.api_versions[1].version_id)
      assert.equal(10, versions(id, "?env_name=RELEASE").total)
      local status, body = server:json("GET", base .. "/apis/publish/" ..
        id .. "?env_name=NOPE")
      c.is_error(status, body, 400, "APIG.2012")
    end)
  end)
end)
