local t = require "apig_test"

describe("apig-server", function()
  local server
  setup(function() server = t.start { instances = { "p1:i1" } } end)
  teardown(function() server:stop() end)

  it("answers /healthz", function()
    local status, body = server:json("GET", "/healthz")
    assert.equal(200, status)
    assert.equal("ok", body.status)
  end)
end)
