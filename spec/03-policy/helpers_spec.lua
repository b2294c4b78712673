-- The Lua helpers that policies require (lua/apig), run in plain Lua 5.4.
local match = require "apig.match"
local window = require "apig.window"
local envs = require "apig.envs"

-- Unix seconds of a UTC date and time.
local function utc(y, m, d, hh, mm)
  local days = 0
  local function leap(year)
    return (year % 4 == 0 and year % 100 ~= 0) or year % 400 == 0
  end
  for year = 1970, y - 1 do days = days + (leap(year) and 366 or 365) end
  local month_days = { 31, leap(y) and 29 or 28, 31, 30, 31, 30, 31, 31,
    30, 31, 30, 31 }
  for month = 1, m - 1 do days = days + month_days[month] end
  return ((days + d - 1) * 24 + hh) * 3600 + mm * 60
end

describe("apig.window", function()
  -- 2025-01-03 is a Friday.
  local freeze = window.weekly { from = "Fri 16:00", to = "Mon 06:00" }

  it("contains a weekly range over the weekend", function()
    assert.is_false(freeze:contains(utc(2025, 1, 3, 15, 59)))
    assert.is_true(freeze:contains(utc(2025, 1, 3, 16, 0)))
    assert.is_true(freeze:contains(utc(2025, 1, 5, 12, 0)))
    assert.is_true(freeze:contains(utc(2025, 1, 6, 5, 59)))
    assert.is_false(freeze:contains(utc(2025, 1, 6, 6, 0)))
    assert.is_false(freeze:contains(utc(2025, 1, 8, 12, 0)))
    assert.equal("Fri 16:00 to Mon 06:00 UTC", freeze.text)
  end)

  it("applies a fixed offset", function()
    local local_freeze = window.weekly { from = "Fri 16:00",
      to = "Mon 06:00", offset = "+08:00" }
    -- Friday 16:00 at +08:00 is Friday 08:00 UTC.
    assert.is_false(local_freeze:contains(utc(2025, 1, 3, 7, 59)))
    assert.is_true(local_freeze:contains(utc(2025, 1, 3, 8, 0)))
    assert.is_false(local_freeze:contains(utc(2025, 1, 5, 22, 0)))
  end)

  it("wraps daily hours past midnight", function()
    local night = window.daily { from = "22:00", to = "06:00",
      days = { "Friday" } }
    assert.is_true(night:contains(utc(2025, 1, 3, 23, 0)))
    assert.is_true(night:contains(utc(2025, 1, 4, 5, 0)))
    assert.is_false(night:contains(utc(2025, 1, 4, 23, 0)))
    assert.is_false(night:contains(utc(2025, 1, 3, 5, 0)))
  end)

  it("takes whole days for dates", function()
    local holidays = window.dates { from = "2024-12-24", to = "2024-12-26" }
    assert.is_false(holidays:contains(utc(2024, 12, 23, 23, 59)))
    assert.is_true(holidays:contains(utc(2024, 12, 24, 0, 0)))
    assert.is_true(holidays:contains(utc(2024, 12, 26, 23, 59)))
    assert.is_false(holidays:contains(utc(2024, 12, 27, 0, 0)))
    local leap = window.dates { from = "2024-02-29 18:00",
      to = "2024-03-01 06:00" }
    assert.is_true(leap:contains(utc(2024, 2, 29, 18, 0)))
    assert.is_false(leap:contains(utc(2024, 3, 1, 6, 0)))
  end)

  it("joins windows with any", function()
    local both = window.any { freeze, window.dates { from = "2025-01-08",
      to = "2025-01-08" } }
    assert.is_true(both:contains(utc(2025, 1, 8, 12, 0)))
    assert.is_true(both:contains(utc(2025, 1, 4, 12, 0)))
    assert.is_false(both:contains(utc(2025, 1, 9, 12, 0)))
  end)

  it("rejects invalid settings with a message", function()
    local cases = {
      { window.weekly, { from = "Fri", to = "Mon 06:00" },
        "invalid weekly time 'Fri'" },
      { window.weekly, { from = "Fri 25:00", to = "Mon 06:00" },
        "invalid time '25:00'" },
      { window.weekly, { from = "Fry 16:00", to = "Mon 06:00" },
        "invalid day 'Fry'" },
      { window.daily, { from = "10:00", to = "10:00" },
        "from and to must differ" },
      { window.dates, { from = "2025-02-29", to = "2025-03-01" },
        "invalid date '2025-02-29'" },
      { window.dates, { from = "2025-03-02", to = "2025-03-01" },
        "from must come before to" },
      { window.daily, { from = "10:00", to = "11:00", offset = "+8" },
        "invalid offset '+8'" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1], case[2])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[3], 1, true), tostring(err))
    end
    assert.has_error(function() freeze:contains(1.5) end)
  end)
end)

describe("apig.match", function()
  local api = { id = "a1", name = "pay_refund", group_id = "g1",
    group_name = "payments", req_method = "POST", req_uri = "/admin/refund",
    type = 1 }

  it("needs every field to match", function()
    assert.is_true(match.rule {}(api))
    assert.is_true(match.rule { group_name = "payments",
      method = "post", uri_prefix = "/admin/" }(api))
    assert.is_false(match.rule { group_name = "payments",
      method = "GET" }(api))
    assert.is_true(match.rule { name_pattern = "^pay_",
      group_id = { "g0", "g1" }, type = 1 }(api))
    assert.is_false(match.rule { uri_prefix = { "/v1/", "/v2/" } }(api))
  end)

  it("returns the first matching entry", function()
    local route = match.first {
      { match = { group_pattern = "^internal" }, env = "TEST" },
      { match = { group_name = "payments" }, env = "RELEASE" },
      { match = {}, env = "DEV" },
    }
    assert.equal("RELEASE", route(api).env)
    assert.equal("DEV", route({ group_name = "other", name = "x" }).env)
  end)

  it("rejects unknown fields", function()
    local ok, err = pcall(match.rule, { groupname = "payments" })
    assert.is_false(ok)
    assert.truthy(err:find("unknown field 'groupname'", 1, true))
    ok, err = pcall(match.first, { { group_name = "payments" } })
    assert.is_false(ok)
    assert.truthy(err:find("entry 1 needs a rule table", 1, true))
  end)
end)

describe("apig.envs", function()
  local ctx = { envs = { RELEASE = "DEFAULT_ENVIRONMENT_RELEASE_ID",
    TEST = "id-test" } }

  it("resolves aliases, names and the fallback", function()
    local resolve = envs.resolver { aliases = { prod = "RELEASE",
      test = "TEST", stage = "STAGING" }, names = true, fallback = "test" }
    assert.equal("DEFAULT_ENVIRONMENT_RELEASE_ID", resolve("prod", ctx))
    assert.equal("DEFAULT_ENVIRONMENT_RELEASE_ID", resolve("PROD", ctx))
    assert.equal("id-test", resolve("test", ctx))
    assert.equal("id-test", resolve("TEST", ctx))
    assert.equal("id-test", resolve(nil, ctx))
    assert.equal("STAGING", resolve("stage", ctx))
    assert.is_nil(resolve("0123456789abcdef0123456789abcdef", ctx))
  end)

  it("keeps nil without names or fallback", function()
    local resolve = envs.resolver { aliases = { prod = "RELEASE" } }
    assert.is_nil(resolve(nil, ctx))
    assert.is_nil(resolve("TEST", ctx))
  end)

  it("finds names and ids", function()
    assert.equal("id-test", envs.id(ctx, "TEST"))
    assert.equal("TEST", envs.name(ctx, "id-test"))
    assert.is_nil(envs.name(ctx, "nope"))
  end)
end)
