-- GET, PUT and DELETE …/api-groups/{group_id}, and GET …/api-groups.
local t = require "apig_test"
local c = require "api_checks"

describe("group calls", function()
  local server, base

  setup(function()
    server = t.start { instances = { "p1:i1" } }
    base = server.base
  end)
  teardown(function() server:stop() end)

  it("updates name and remark", function()
    local id = server:create_group("group_old")
    local _, before = server:json("GET", base .. "/api-groups/" .. id)
    local status, group = server:json("PUT", base .. "/api-groups/" .. id,
      { name = "group_new.v2", remark = "发布 remark" })
    assert.equal(200, status)
    assert.equal(c.GROUP_FIELDS, c.keys(group))
    assert.equal(id, group.id)
    assert.equal("group_new.v2", group.name)
    assert.equal("发布 remark", group.remark)
    assert.is_true(c.fractional(group.update_time), group.update_time)
    assert.is_true(c.fractional(group.register_time), group.register_time)
    local shown
    status, shown = server:json("GET", base .. "/api-groups/" .. id)
    assert.equal(200, status)
    assert.equal(c.GROUP_FIELDS, c.keys(shown))
    assert.equal("group_new.v2", shown.name)
    assert.is_true(c.whole_seconds(shown.update_time), shown.update_time)
    assert.equal(before.register_time, shown.register_time)
  end)

  it("renames the group its APIs report", function()
    local id = server:create_group("group_with_api")
    local api = server:create_api(id, "api_in_renamed")
    server:json("PUT", base .. "/api-groups/" .. id, { name = "group_renamed" })
    local _, shown = server:json("GET", base .. "/apis/" .. api)
    assert.equal("group_renamed", shown.group_name)
  end)

  it("rejects invalid bodies without a change", function()
    local id = server:create_group("group_bad")
    server:create_group("group_taken")
    local cases = {
      { {}, 400, "APIG.2001" },
      { { name = "ab" }, 400, "APIG.2011" },
      { { name = "-abc" }, 400, "APIG.2011" },
      { { name = "bad name" }, 400, "APIG.2011" },
      { { name = ("g"):rep(256) }, 400, "APIG.2011" },
      { { name = {} }, 400, "APIG.2011" },
      { { name = "group_ok", remark = ("发"):rep(256) }, 400, "APIG.2011" },
      { { name = "group_taken" }, 400, "APIG.3201" },
      { "", 400, "APIG.2000" },
      { '{"name":"group_ok"} x', 400, "APIG.2000" },
    }
    local before = c.state(server)
    for _, case in ipairs(cases) do
      local status, body = server:json("PUT", base .. "/api-groups/" .. id,
        case[1])
      c.is_error(status, body, case[2], case[3])
    end
    assert.equal(before, c.state(server))
  end)

  it("accepts a remark of 255 characters", function()
    local id = server:create_group("group_long_remark")
    local remark = ("发"):rep(255)
    local status, group = server:json("PUT", base .. "/api-groups/" .. id,
      { name = "group_long_remark", remark = remark })
    assert.equal(200, status)
    assert.equal(remark, group.remark)
  end)

  it("answers 404 APIG.3001 for an unknown group", function()
    local missing = ("a"):rep(32)
    for _, method in ipairs { "GET", "PUT", "DELETE" } do
      local status, body = server:json(method, base .. "/api-groups/" ..
        missing, method == "PUT" and { name = "group_x" } or nil)
      c.is_error(status, body, 404, "APIG.3001")
      assert.equal("API group " .. missing .. " does not exist",
        body.error_msg)
    end
  end)

  it("refuses to delete a group with APIs", function()
    local id = server:create_group("group_full")
    local api = server:create_api(id, "api_in_full")
    local status, body = server:json("DELETE", base .. "/api-groups/" .. id)
    c.is_error(status, body, 403, "APIG.3415")
    assert.equal(200, (server:json("GET", base .. "/api-groups/" .. id)))
    assert.equal(204, (server:request("DELETE", base .. "/apis/" .. api)))
    local text
    status, text = server:request("DELETE", base .. "/api-groups/" .. id)
    assert.equal(204, status)
    assert.equal("", text)
    assert.equal(404, (server:json("GET", base .. "/api-groups/" .. id)))
  end)

  describe("list", function()
    setup(function()
      for i = 1, 25 do server:create_group(("listed_%02d"):format(i)) end
    end)

    local function list(query)
      local status, page = server:json("GET", base .. "/api-groups" .. query)
      assert.equal(200, status)
      assert.equal(#page.groups, page.size)
      return page
    end

    it("shows whole-second times", function()
      local page = list("")
      for _, group in ipairs(page.groups) do
        assert.equal(c.GROUP_FIELDS, c.keys(group))
        assert.is_true(c.whole_seconds(group.register_time))
        assert.is_true(c.whole_seconds(group.update_time))
      end
    end)

    it("uses 20 for limit 0 and for no limit", function()
      assert.equal(20, list("").size)
      assert.equal(20, list("?limit=0").size)
      assert.equal(20, list("?limit=-4").size)
      assert.is_true(list("").total > 25)
    end)

    it("pages past the end and from a negative offset", function()
      local total = list("").total
      local page = list(("?offset=%d"):format(total))
      assert.equal(0, page.size)
      assert.equal(total, page.total)
      page = list(("?offset=%d&limit=5"):format(total - 2))
      assert.equal(2, page.size)
      assert.equal(list("?limit=1").groups[1].id,
        list("?offset=-10&limit=1").groups[1].id)
    end)

    it("filters by name, exactly with precise_search", function()
      assert.equal(25, list("?name=listed_&limit=100").total)
      -- listed_10 to listed_19
      assert.equal(10, list("?name=listed_1&limit=100").total)
      local page = list("?name=listed_1&precise_search=name")
      assert.equal(0, page.total)
      page = list("?name=listed_10&precise_search=name")
      assert.equal(1, page.total)
      assert.equal("listed_10", page.groups[1].name)
    end)

    it("filters by id", function()
      local first = list("?limit=1").groups[1]
      local page = list("?id=" .. first.id)
      assert.equal(1, page.total)
      assert.equal(first.id, page.groups[1].id)
    end)
  end)
end)
