-- A failing journal write while the server runs: the request whose change
-- it carried gets 500 APIG.9999, the change is left out, and the server
-- keeps serving.
-- While serving with fsync on, the records of requests that arrive during
-- one flush go to disk in a single write, so here a failed write can carry
-- several changes at once.
local t = require "apig_test"

local function publish(server, id, remark)
  return server:batch("online", { apis = { id }, env_id = t.RELEASE,
                                  remark = remark })
end

local function remarks(server, id)
  local status, versions = server:json("GET", server.base ..
    "/apis/publish/" .. id .. "?env_id=" .. t.RELEASE)
  assert.equal(200, status)
  local list = {}
  for _, v in ipairs(versions.api_versions) do list[#list + 1] = v.remark end
  return table.concat(list, ",")
end

describe("a journal write that fails while serving", function()
  it("answers 500, drops that change and keeps serving", function()
    -- The 12th write of the data folder fails: a few publishes in.
    local server = t.start { env = { "APIG_FAULT_INJECT=write:12" } }
    local group = server:create_group("faults")
    local id = server:create_api(group, "fault_api")
    local answered, failed_at = {}, nil
    for n = 1, 20 do
      local status, answer = publish(server, id, "r" .. n)
      if status == 200 then
        answered[#answered + 1] = "r" .. n
      else
        assert.equal(500, status)
        assert.equal("APIG.9999", answer.error_code)
        failed_at = n
        break
      end
    end
    assert.is_not_nil(failed_at, "no write failed")
    -- Later changes are written again.
    local status = publish(server, id, "after")
    assert.equal(200, status)
    answered[#answered + 1] = "after"

    -- Newest first, at most 10 kept: the failed remark is not among them.
    local newest = {}
    for i = #answered, math.max(1, #answered - 9), -1 do
      newest[#newest + 1] = answered[i]
    end
    local expected = table.concat(newest, ",")
    assert.equal(expected, remarks(server, id))
    assert.truthy(server:log():find("journal write to", 1, true))

    -- The files contain exactly the acknowledged changes.
    server:restart()
    assert.equal(expected, remarks(server, id))
    server:stop()
  end)
end)
