-- wrk script: each request publishes one API, picked at random from the
-- ids in the file named by APIG_BENCH_IDS, to RELEASE.
local ids = {}
for line in io.lines(os.getenv("APIG_BENCH_IDS")) do ids[#ids + 1] = line end
local path = os.getenv("APIG_BENCH_PATH")

wrk.method = "POST"
wrk.headers["X-Auth-Token"] = "bench"
wrk.headers["Content-Type"] = "application/json"

function request()
  local id = ids[math.random(#ids)]
  return wrk.format(nil, path, nil, '{"apis":["' .. id ..
    '"],"env_id":"DEFAULT_ENVIRONMENT_RELEASE_ID"}')
end
