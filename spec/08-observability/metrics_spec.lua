-- GET /healthz and GET /metrics: Prometheus text that a scraper can parse.
local t = require "apig_test"

-- Reads one label set "{a=\"x\",b=\"y\"}" from text at pos. Returns the
-- labels and the position after "}", or nil and a reason.
local function parse_labels(text, pos)
  local labels = {}
  pos = pos + 1
  while true do
    if text:sub(pos, pos) == "}" then return labels, pos + 1 end
    local name, after = text:match("^([%a_][%w_]*)=\"()", pos)
    if not name then return nil, "bad label name at " .. pos end
    local value, i = {}, after
    while true do
      local c = text:sub(i, i)
      if c == "" then return nil, "unterminated label value" end
      if c == "\"" then break end
      if c == "\\" then
        local n = text:sub(i + 1, i + 1)
        if n == "n" then value[#value + 1] = "\n"
        elseif n == "\\" or n == "\"" then value[#value + 1] = n
        else return nil, "bad escape \\" .. n end
        i = i + 2
      else
        value[#value + 1] = c
        i = i + 1
      end
    end
    labels[name] = table.concat(value)
    pos = i + 1
    local sep = text:sub(pos, pos)
    if sep == "," then pos = pos + 1
    elseif sep ~= "}" then return nil, "expected , or } at " .. pos end
  end
end

local function parse_value(text)
  if text == "+Inf" then return math.huge end
  if text == "-Inf" then return -math.huge end
  if text == "NaN" then return 0 / 0 end
  return tonumber(text)
end

-- Parses the whole exposition. Returns { types = name -> type,
-- samples = list of {name, labels, value} }, or raises naming the line.
local function parse(text)
  local result = { types = {}, helps = {}, samples = {} }
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    if line:sub(1, 1) == "#" then
      local kind, name, rest = line:match("^# (%u+) ([%a_:][%w_:]*) (.*)$")
      if kind == "TYPE" then
        assert(result.types[name] == nil, "second TYPE for " .. name)
        result.types[name] = rest
      elseif kind == "HELP" then
        result.helps[name] = rest
      end
    else
      local name, pos = line:match("^([%a_:][%w_:]*)()")
      assert(name, "line " .. n .. " has no metric name: " .. line)
      local labels = {}
      if line:sub(pos, pos) == "{" then
        local err
        labels, err = parse_labels(line, pos)
        assert(labels, "line " .. n .. ": " .. tostring(err))
        pos = err
      end
      local value_text = line:match("^ (%S+)$", pos)
      assert(value_text, "line " .. n .. " has no single value: " .. line)
      local value = parse_value(value_text)
      assert(value, "line " .. n .. " has a bad value: " .. value_text)
      result.samples[#result.samples + 1] =
        { name = name, labels = labels, value = value }
    end
  end
  assert(text:sub(-1) == "\n", "the exposition must end with a line feed")
  return result
end

-- The family a sample belongs to: its own name or the histogram/summary
-- base name.
local function family_of(types, name)
  if types[name] then return name end
  for _, suffix in ipairs { "_bucket", "_sum", "_count" } do
    local base = name:sub(1, -#suffix - 1)
    if name:sub(-#suffix) == suffix and types[base] then return base end
  end
  return nil
end

local function scrape(server)
  local status, body, headers = server:request("GET", "/metrics", nil,
    { token = false })
  assert.equal(200, status)
  assert.matches("^text/plain; version=0%.0%.4", headers["content-type"])
  return parse(body), body
end

local function find(m, name, labels)
  for _, s in ipairs(m.samples) do
    if s.name == name then
      local all = true
      for k, v in pairs(labels or {}) do
        if s.labels[k] ~= v then all = false end
      end
      if all then return s.value end
    end
  end
  return nil
end

local function check_histogram(m, base)
  local buckets = {}
  for _, s in ipairs(m.samples) do
    if s.name == base .. "_bucket" then buckets[#buckets + 1] = s end
  end
  assert.is_true(#buckets >= 2, base .. " has buckets")
  local previous_le, previous = -math.huge, 0
  for _, b in ipairs(buckets) do
    local le = parse_value(b.labels.le)
    assert.is_truthy(le, base .. " bucket has an le label")
    assert.is_true(le > previous_le, base .. " buckets ascend")
    assert.is_true(b.value >= previous, base .. " buckets are cumulative")
    previous_le, previous = le, b.value
  end
  assert.equal("+Inf", buckets[#buckets].labels.le)
  assert.equal(find(m, base .. "_count"), buckets[#buckets].value)
  assert.is_truthy(find(m, base .. "_sum"))
end

local policy_text = [[
local policy = {}
function policy.authorize(api, env, ctx)
  if api.name:find("^spin") then
    while true do end
  end
  return true
end
function policy.rewrite_remark(remark, api, env, ctx)
  return remark
end
return policy
]]

describe("GET /metrics", function()
  local server, group, apis

  setup(function()
    local dir = t.tmpdir()
    t.write_file(dir .. "/policy.lua", policy_text)
    server = t.start { instances = { "p1:i1" },
                       args = { "--policy", dir .. "/policy.lua",
                                "--policy-budget", "100000" } }
    group = server:create_group("metrics_group")
    apis = {
      server:create_api(group, "plain_api", "/plain"),
      server:create_api(group, "spin_api", "/spin"),
    }
  end)
  teardown(function() server:stop() end)

  it("answers /healthz without a token", function()
    local status, body = server:json("GET", "/healthz", nil, { token = false })
    assert.equal(200, status)
    assert.equal("ok", body.status)
  end)

  it("answers 405 with Allow: GET for other methods", function()
    for _, path in ipairs { "/healthz", "/metrics" } do
      for _, method in ipairs { "POST", "DELETE", "PUT" } do
        local status, body, headers = server:json(method, path, nil,
          { token = false })
        assert.equal(405, status)
        assert.equal("APIG.2012", body.error_code)
        assert.equal("GET", headers["allow"])
      end
    end
  end)

  it("parses as Prometheus text with a TYPE for every sample", function()
    local m, text = scrape(server)
    assert.is_true(#m.samples > 10)
    for _, s in ipairs(m.samples) do
      local family = family_of(m.types, s.name)
      assert.is_truthy(family, "no TYPE line for " .. s.name)
      assert.is_truthy(m.helps[family], "no HELP line for " .. family)
    end
    for name, kind in pairs(m.types) do
      assert.is_truthy(({ counter = 1, gauge = 1, histogram = 1,
        summary = 1 })[kind], name .. " has type " .. kind)
      if kind == "counter" then
        assert.matches("_total$", name)
      end
    end
    assert.not_matches("\r", text)
  end)

  it("keeps histogram buckets cumulative up to +Inf", function()
    server:request("GET", server.base .. "/envs")
    local m = scrape(server)
    for name, kind in pairs(m.types) do
      if kind == "histogram" then check_histogram(m, name) end
    end
    assert.equal("histogram", m.types.apig_request_duration_seconds)
    assert.equal("histogram", m.types.apig_batch_size)
  end)

  it("counts requests by route and status", function()
    local before = scrape(server)
    local labels = { route = "envs", status = "200" }
    local envs_before = find(before, "apig_requests_total", labels) or 0
    local missing = { route = "group", status = "404" }
    local missing_before = find(before, "apig_requests_total", missing) or 0
    for _ = 1, 3 do server:request("GET", server.base .. "/envs") end
    server:request("GET", server.base .. "/api-groups/" .. ("0"):rep(32))
    local after = scrape(server)
    assert.equal(envs_before + 3, find(after, "apig_requests_total", labels))
    assert.equal(missing_before + 1,
      find(after, "apig_requests_total", missing))
    assert.is_true(find(after, "apig_request_duration_seconds_count") >=
      find(before, "apig_request_duration_seconds_count") + 4)
  end)

  it("counts batches, hook calls, budget overruns and flushes", function()
    local before = scrape(server)
    local status, body = server:batch("online",
      { apis = apis, env_id = t.RELEASE })
    assert.equal(200, status)
    assert.equal(1, #body.success)
    assert.equal(1, #body.failure)
    assert.equal("APIG.9999", body.failure[1].error_code)
    local after = scrape(server)
    local function grew(name, by)
      assert.equal((find(before, name) or 0) + by, find(after, name), name)
    end
    grew("apig_batch_size_count", 1)
    grew("apig_batch_size_sum", 2)
    grew("apig_policy_budget_overruns_total", 1)
    grew("apig_policy_hook_errors_total", 1)
    assert.is_true(find(after, "apig_policy_hook_calls_total") >=
      find(before, "apig_policy_hook_calls_total") + 3)
    assert.is_true(find(after, "apig_journal_flush_seconds_count") >
      find(before, "apig_journal_flush_seconds_count"))
    assert.equal(1, find(after, "apig_requests_total",
      { route = "batch", status = "200" }) -
      (find(before, "apig_requests_total",
        { route = "batch", status = "200" }) or 0))
  end)

  it("reports store sizes, snapshot age and the process", function()
    local m = scrape(server)
    assert.equal(2, find(m, "apig_store_objects", { kind = "apis" }))
    assert.equal(1, find(m, "apig_store_objects", { kind = "groups" }))
    assert.equal(1, find(m, "apig_store_objects", { kind = "publications" }))
    assert.equal(1, find(m, "apig_store_objects", { kind = "instances" }))
    assert.is_true(find(m, "apig_snapshot_age_seconds") >= 0)
    assert.is_true(find(m, "process_resident_memory_bytes") > 1024 * 1024)
    assert.is_true(find(m, "process_open_fds") >= 3)
    assert.equal(1, find(m, "apig_policy_loaded"))
  end)

  it("keeps hook counters after a policy reload", function()
    local before = find(scrape(server), "apig_policy_hook_calls_total")
    assert.is_true(before > 0)
    server:signal("HUP")
    local deadline = os.time() + 10
    while not server:log():find("policy reloaded") do
      assert.is_true(os.time() < deadline, "the policy did not reload")
      t.sleep(0.05)
    end
    local after = find(scrape(server), "apig_policy_hook_calls_total")
    assert.is_true(after >= before)
  end)
end)
