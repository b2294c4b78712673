-- One data folder, one server: a second one must not start on it, since it
-- would append to the same journal and lose the first one's changes.
local t = require "apig_test"

describe("data folder lock", function()
  it("refuses a second server on the same data folder", function()
    local first = t.start { instances = { "p1:i1" } }
    local ok, err = pcall(t.start, { instances = { "p1:i1" },
                                     data_dir = first.data_dir })
    assert.is_false(ok)
    assert.matches("data folder .* is in use by another server or handle",
      tostring(err))
    local status, env = first:json("POST", first.base .. "/envs",
      { name = "STILL_MINE" })
    assert.equal(201, status)
    assert.equal(0, first:stop())

    -- Once the first one stopped, the folder is free again.
    local second = t.start { instances = { "p1:i1" },
                             data_dir = first.data_dir }
    local _, envs = second:json("GET", second.base .. "/envs")
    local names = {}
    for _, e in ipairs(envs.envs) do names[#names + 1] = e.name end
    assert.same({ "RELEASE", "STILL_MINE" }, names)
    assert.equal(env.id, envs.envs[2].id)
    assert.equal(0, second:stop())
  end)
end)
