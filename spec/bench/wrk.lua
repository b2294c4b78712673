-- wrk script for spec/bench/run. BENCH_MODE picks the requests:
--   get     GET BENCH_BASE (the bare responder's row)
--   batch   POST …/apis/publish, BENCH_BATCH ids per request taken from
--           BENCH_IDS (one id per line) in consecutive slices; each pass
--           over the slices publishes them, the next takes them offline,
--           so with fewer connections than slices no batch meets itself
--   pages   GET …/apis?limit=500 over BENCH_PAGES pages in turn
-- The remark carries a change ticket id so that a change freeze policy
-- allows the batches. done() prints one line: RESULT requests/s p50_ms p99_ms errors non2xx.
local mode = os.getenv("BENCH_MODE") or "get"
local base = os.getenv("BENCH_BASE") or "/"
local headers = { ["X-Auth-Token"] = "bench",
                  ["Content-Type"] = "application/json" }
local requests = {}
local next_request = 1

local function batch_requests()
  local ids = {}
  for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
  local size = tonumber(os.getenv("BENCH_BATCH") or "1")
  local online, offline = {}, {}
  for first = 1, #ids - size + 1, size do
    local quoted = {}
    for i = first, first + size - 1 do
      quoted[#quoted + 1] = '"' .. ids[i] .. '"'
    end
    local body = '{"apis":[' .. table.concat(quoted, ",") ..
      '],"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID","remark":"bench CHG-1234"}'
    online[#online + 1] = wrk.format("POST",
      base .. "/apis/publish?action=online", headers, body)
    offline[#offline + 1] = wrk.format("POST",
      base .. "/apis/publish?action=offline", headers, body)
  end
  for _, r in ipairs(online) do requests[#requests + 1] = r end
  for _, r in ipairs(offline) do requests[#requests + 1] = r end
end

local function page_requests()
  for page = 0, tonumber(os.getenv("BENCH_PAGES") or "1") - 1 do
    requests[#requests + 1] = wrk.format("GET",
      ("%s/apis?limit=500&offset=%d"):format(base, page * 500), headers)
  end
end

function init(args)
  if mode == "batch" then batch_requests()
  elseif mode == "pages" then page_requests()
  else requests[1] = wrk.format("GET", base, headers) end
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(("RESULT %.1f %.3f %.3f %d %d\n"):format(
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
