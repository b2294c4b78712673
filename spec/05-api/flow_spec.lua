-- One resource life cycle as Terraform's provider drives it: create,
-- publish, read the history, edit and publish again, switch back, take
-- the version offline, then destroy everything.
local t = require "apig_test"
local c = require "api_checks"

describe("Terraform-style flow", function()
  local server, base

  setup(function() server = t.start { instances = { "p1:i1" } } end)
  teardown(function() server:stop() end)

  it("runs the whole life cycle", function()
    base = server.base

    -- Create environment, group and API.
    local status, env = server:json("POST", base .. "/envs",
      { name = "tf_env", remark = "terraform" })
    assert.equal(201, status)
    local group
    status, group = server:json("POST", base .. "/api-groups",
      { name = "tf_group" })
    assert.equal(201, status)
    local api
    status, api = server:json("POST", base .. "/apis",
      c.api_body(group.id, "tf_api", { remark = "v1",
        mock_info = { result_content = "first" } }))
    assert.equal(201, status)

    -- Publish.
    local first
    status, first = server:json("POST", base .. "/apis/action",
      { action = "online", env_id = env.id, api_id = api.id,
        remark = "publish 1" })
    assert.equal(201, status)
    assert.equal(c.PUBLISH_FIELDS, c.keys(first))

    -- List versions.
    local page
    status, page = server:json("GET", base .. "/apis/publish/" .. api.id ..
      "?env_id=" .. env.id)
    assert.equal(200, status)
    assert.equal(1, page.total)
    local v = page.api_versions[1]
    assert.equal(first.version_id, v.version_id)
    assert.equal(1, v.status)
    assert.equal("tf_env", v.env_name)
    assert.equal("publish 1", v.remark)
    assert.is_true(c.whole_seconds(v.publish_time), v.publish_time)

    -- The API shows its publication.
    local shown
    status, shown = server:json("GET", base .. "/apis/" .. api.id)
    assert.equal(env.id, shown.run_env_id)
    assert.equal("tf_env", shown.run_env_name)
    assert.equal(first.publish_id, shown.publish_id)
    assert.is_true(c.whole_seconds(shown.publish_time))

    -- Update the API and publish again.
    status = server:json("PUT", base .. "/apis/" .. api.id,
      c.api_body(group.id, "tf_api", { remark = "v2",
        mock_info = { result_content = "second" } }))
    assert.equal(200, status)
    local second
    status, second = server:json("POST", base .. "/apis/action",
      { action = "online", env_id = env.id, api_id = api.id,
        remark = "publish 2" })
    assert.equal(201, status)
    assert.equal(first.publish_id, second.publish_id)
    status, page = server:json("GET", base .. "/apis/publish/" .. api.id)
    assert.equal(2, page.total)
    assert.equal(second.version_id, page.api_versions[1].version_id)
    assert.equal(1, page.api_versions[1].status)
    assert.equal(first.version_id, page.api_versions[2].version_id)
    assert.equal(2, page.api_versions[2].status)

    -- The first version's frozen definition did not change.
    local frozen
    status, frozen = server:json("GET", base .. "/apis/versions/" ..
      first.version_id)
    assert.equal(200, status)
    assert.equal("first", frozen.mock_info.result_content)
    assert.equal("v1", frozen.remark)
    status, frozen = server:json("GET", base .. "/apis/versions/" ..
      second.version_id)
    assert.equal("second", frozen.mock_info.result_content)

    -- Switch back to the first version.
    local switched
    status, switched = server:json("PUT", base .. "/apis/publish/" .. api.id,
      { version_id = first.version_id })
    assert.equal(200, status)
    assert.equal(first.version_id, switched.version_id)
    local runtime
    status, runtime = server:json("GET", base .. "/apis/runtime/" .. api.id ..
      "?env_id=" .. env.id)
    assert.equal(200, status)
    assert.equal("first", runtime.mock_info.result_content)

    -- Take the effective version offline.
    status = server:request("DELETE", base .. "/apis/versions/" ..
      first.version_id)
    assert.equal(204, status)
    status, shown = server:json("GET", base .. "/apis/" .. api.id)
    assert.equal("", shown.run_env_id)
    status, page = server:json("GET", base .. "/apis/publish/" .. api.id)
    assert.equal(2, page.total)
    for _, version in ipairs(page.api_versions) do
      assert.equal(2, version.status)
    end

    -- Destroy: API, group, environment.
    assert.equal(204, (server:request("DELETE", base .. "/apis/" .. api.id)))
    assert.equal(204, (server:request("DELETE", base .. "/api-groups/" ..
      group.id)))
    assert.equal(204, (server:request("DELETE", base .. "/envs/" .. env.id)))
    status, page = server:json("GET", base .. "/envs")
    assert.equal(1, page.total)
    assert.equal(t.RELEASE, page.envs[1].id)
    status, page = server:json("GET", base .. "/api-groups")
    assert.equal(0, page.total)
    status, page = server:json("GET", base .. "/apis")
    assert.equal(0, page.total)
  end)

  it("keeps every change across a restart", function()
    local env = server:create_env("tf_keep")
    local group = server:create_group("tf_keep_group")
    local api = server:create_api(group, "tf_keep_api")
    local _, first = server:json("POST", server.base .. "/apis/action",
      { action = "online", env_id = env, api_id = api })
    server:json("PUT", server.base .. "/apis/" .. api,
      c.api_body(group, "tf_keep_api2"))
    server:json("POST", server.base .. "/apis/action",
      { action = "online", env_id = env, api_id = api })
    server:json("PUT", server.base .. "/apis/publish/" .. api,
      { version_id = first.version_id })
    server:json("PUT", server.base .. "/envs/" .. env,
      { name = "tf_kept", remark = "after" })
    local before = c.state(server, { api })
    server:restart()
    assert.equal(before, c.state(server, { api }))
    local _, frozen = server:json("GET", server.base .. "/apis/versions/" ..
      first.version_id)
    assert.equal("tf_keep_api", frozen.name)
  end)
end)
