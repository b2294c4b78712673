-- Drives apig-server and the bare responder with wrk and prints one table:
-- requests/s, p50/p99 latency and the ratio to the bare responder.
-- Run through spec/bench/run, which builds the release binaries first.
--
-- Each row is the best of BENCH_REPEAT wrk runs (default 3) of
-- BENCH_DURATION seconds (default 5): other processes on a shared machine
-- only ever slow a run down, so the fastest run is the least disturbed.
-- Environment also: BENCH_CONNECTIONS (default 64), BENCH_APIS (catalogue size for the
-- 1000-id rows, default 100000), APIG_BUILD_DIR (default build-release).
package.path = "spec/helpers/?.lua;" .. package.path
local t = require "apig_test"

local build = os.getenv("APIG_BUILD_DIR") or "build-release"
local duration = tonumber(os.getenv("BENCH_DURATION") or "5")
local repeats = tonumber(os.getenv("BENCH_REPEAT") or "3")
local connections = tonumber(os.getenv("BENCH_CONNECTIONS") or "64")
local catalogue_size = tonumber(os.getenv("BENCH_APIS") or "100000")
local work = t.tmpdir()
local two_cores = tonumber(t.capture("nproc")) >= 2
local server_cpu = two_cores and "taskset -c 0 " or ""
local wrk_cpu = two_cores and "taskset -c 1 " or ""

-- The server binary, pinned to CPU 0 through a wrapper that execs it, so
-- the pid the helper records is the server's own.
local wrapper = work .. "/apig-server"
t.write_file(wrapper, "#!/bin/sh\nexec " .. server_cpu ..
  t.shell_quote(build .. "/plugins/server/apig-server") .. ' "$@"\n')
os.execute("chmod +x " .. t.shell_quote(wrapper))
t.server_binary = wrapper

-- The example policy with all three hooks, else a small one of our own.
local function pick_policy()
  local example = "examples/policies/all_three.lua"
  return t.read_file(example) and example or "spec/bench/policy.lua"
end
local policy = pick_policy()

-- Runs wrk once with wrk.lua in mode and returns the figures of its
-- RESULT line.
local function run_wrk_once(port, mode, env, conns)
  local vars = { "BENCH_MODE=" .. mode }
  for k, v in pairs(env or {}) do
    vars[#vars + 1] = k .. "=" .. t.shell_quote(v)
  end
  local command = table.concat(vars, " ") .. " " .. wrk_cpu ..
    ("wrk -t1 -c%d -d%ds --timeout 30s -s spec/bench/wrk.lua " ..
     "http://127.0.0.1:%d 2>&1"):format(conns or connections, duration, port)
  local out = t.capture(command)
  local rps, p50, p99, errors, non2xx =
    out:match("RESULT (%S+) (%S+) (%S+) (%d+) (%d+)")
  assert(rps, "wrk failed:\n" .. out)
  return { rps = tonumber(rps), p50 = tonumber(p50), p99 = tonumber(p99),
           errors = tonumber(errors), non2xx = tonumber(non2xx) }
end

-- Publishes and takes offline ids[1] once, and fails unless both succeed,
-- so a policy that denies shows up here and not as fast failures in wrk.
local function check_batches(server, ids)
  for _, action in ipairs { "online", "offline" } do
    local status, answer = server:batch(action, { apis = { ids[1] },
      env_id = t.RELEASE, remark = "bench CHG-1234" })
    assert(status == 200 and #answer.failure == 0,
      action .. " failed: " .. t.json.encode(answer or {}))
  end
end

-- Runs wrk `repeats` times and returns the run with the most requests/s.
local function run_wrk(port, mode, env, conns)
  local best
  for _ = 1, repeats do
    local r = run_wrk_once(port, mode, env, conns)
    if not best or r.rps > best.rps then best = r end
  end
  return best
end

local function write_ids(path, ids)
  t.write_file(path, table.concat(ids, "\n") .. "\n")
end

-- Imports n APIs over HTTP, 1000 per new group, and returns their ids.
local function import_catalogue(server, n)
  local ids = {}
  for group = 1, math.ceil(n / 1000) do
    local paths = {}
    for i = 1, math.min(1000, n - (group - 1) * 1000) do
      paths[("/g%d/r%d"):format(group, i)] = {
        get = { operationId = ("g%d_op%d"):format(group, i) } }
    end
    local status, answer = server:import_json(t.json.encode {
      openapi = "3.0.0", paths = paths,
      info = { title = "bench group " .. group, version = "1" } })
    assert(status == 200, "import failed: " .. tostring(status))
    for _, item in ipairs(answer.success) do ids[#ids + 1] = item.id end
  end
  assert(#ids == n, ("imported %d of %d APIs"):format(#ids, n))
  return ids
end

local function bare_row()
  local out = work .. "/bare.out"
  local pid = t.capture(server_cpu .. build .. "/spec/bench/bare_responder" ..
    " >" .. out .. " 2>&1 & echo $!"):match("%d+")
  local port
  for _ = 1, 500 do
    port = (t.read_file(out) or ""):match("listening on http://[%d.]+:(%d+)")
    if port then break end
    t.sleep(0.01)
  end
  assert(port, "the bare responder did not start")
  local result = run_wrk(tonumber(port), "get", { BENCH_BASE = "/" })
  os.execute("kill " .. pid)
  return result
end

local function start_server(args, data_dir)
  return t.start { instances = { "bench:i1" }, data_dir = data_dir,
                   args = args, start_timeout = 300 }
end

-- Single-API batches over 256 APIs, each published then taken offline:
-- fsync on, fsync on with the policy, and fsync off (the CPU cost alone).
local function single_rows()
  local rows = {}
  local configs = { {}, { "--policy", policy }, { "--fsync", "off" } }
  for _, args in ipairs(configs) do
    local server = start_server(args)
    local group = server:create_group("bench_single")
    local ids = {}
    for i = 1, 256 do
      ids[i] = server:create_api(group, ("bench_api_%d"):format(i))
    end
    check_batches(server, ids)
    write_ids(work .. "/single.ids", ids)
    rows[#rows + 1] = run_wrk(server.port, "batch", {
      BENCH_BASE = server.base, BENCH_IDS = work .. "/single.ids",
      BENCH_BATCH = "1" })
    server:stop()
  end
  return rows[1], rows[2], rows[3]
end

-- 1000-id batches and pages of 500 against the large catalogue; the
-- second server reloads the same data folder with the policy.
local function catalogue_rows()
  local data_dir = work .. "/catalogue"
  local server = start_server({ "--snapshot-interval", "3600" }, data_dir)
  local started = t.now()
  local ids = import_catalogue(server, catalogue_size)
  local import_s = t.now() - started
  check_batches(server, ids)
  write_ids(work .. "/catalogue.ids", ids)
  local batch_env = { BENCH_BASE = server.base,
                      BENCH_IDS = work .. "/catalogue.ids",
                      BENCH_BATCH = "1000" }
  local plain = run_wrk(server.port, "batch", batch_env, 1)
  local pages = run_wrk(server.port, "pages", { BENCH_BASE = server.base,
    BENCH_PAGES = tostring(math.ceil(catalogue_size / 500)) })
  server:stop()
  server = start_server({ "--policy", policy }, data_dir)
  check_batches(server, ids)
  batch_env.BENCH_BASE = server.base
  local hooked = run_wrk(server.port, "batch", batch_env, 1)
  server:stop()
  return plain, hooked, pages, import_s
end

local function machine()
  local model = t.capture("grep -m1 'model name' /proc/cpuinfo"):match(
    ":%s*(.-)%s*$") or "unknown"
  local mem = tonumber(t.capture("grep MemTotal /proc/meminfo"):match(
    "(%d+)")) or 0
  return ("%s CPUs, %s, %.1f GiB memory, %s"):format(
    t.capture("nproc"):gsub("%s", ""), model, mem / 1048576,
    t.capture("uname -sr"):gsub("%s+$", ""))
end

local function load_average()
  return (t.read_file("/proc/loadavg") or "?"):match("^(%S+ %S+ %S+)")
end

local load_before = load_average()
local bare = bare_row()
local single, single_hooks, single_nosync = single_rows()
local plain, hooked, pages, import_s = catalogue_rows()

print(("Machine: %s"):format(machine()))
print(("Server on CPU 0, wrk on CPU 1: %s. Each row: best of %d wrk " ..
  "runs of %d s, wrk -t1, %d connections unless noted. Policy: %s. " ..
  "Catalogue: %d APIs imported in %.1f s."):format(
  two_cores and "yes" or "no", repeats, duration, connections, policy,
  catalogue_size, import_s))
print(("Load average (1, 5, 15 min) before: %s, after: %s; other " ..
  "processes on these CPUs skew every row."):format(load_before,
  load_average()))
print()
print("| # | workload | requests/s | p50 ms | p99 ms | vs row 1 | errors |")
print("|---|---|---:|---:|---:|---:|---:|")
local function row(n, name, r)
  print(("| %s | %s | %.0f | %.3f | %.3f | %.1f%% | %d |"):format(n, name,
    r.rps, r.p50, r.p99, 100 * r.rps / bare.rps, r.errors + r.non2xx))
end
row("1", "bare libuv + llhttp responder", bare)
row("2", "single-API online/offline, fsync on, no policy", single)
row("2b", "the same with fsync off", single_nosync)
row("3", "row 2 with the policy's three hooks", single_hooks)
row("4a", "1000-id batches, 1 connection, no policy", plain)
row("4b", "1000-id batches, 1 connection, three hooks", hooked)
row("5", "GET …/apis pages of 500", pages)
