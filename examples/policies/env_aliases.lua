-- Environment aliases: a batch may name its target environment with a
-- short alias instead of the environment's random id:
--
--   {"apis": [...], "env_id": "prod"}  -> RELEASE
--   {"apis": [...], "env_id": "test"}  -> the environment named TEST
--   {"apis": [...], "env_id": "TEST"}  -> TEST too (names work as well)
--   {"apis": [...]}                    -> TEST, the fallback
--
-- Any other env_id is kept as sent, so real ids keep working. An alias
-- whose environment does not exist fails per API with APIG.3003
-- "Environment TEST does not exist". Because this policy maps
-- environments, a batch needs no env_id and an unknown env_id is reported
-- per API instead of for the whole request.
--
-- Hooks see environment ids only, so the aliases name environments and
-- the helper looks their ids up in ctx.envs (name to id).
--
--   apig-server --policy examples/policies/env_aliases.lua

local envs = require "apig.envs"

local resolve = envs.resolver {
  aliases = { prod = "RELEASE", test = "TEST" },
  names = true,
  fallback = "test",
}

local policy = {}

-- The mapping depends only on the request's env_id and the instance's
-- environments, so it is kept per request id: a 1000-API batch resolves
-- once.
local last_request, last_env_id, last_result

function policy.map_env(env_id, api, ctx)
  local request = ctx.request_id
  if request ~= last_request or env_id ~= last_env_id then
    last_request, last_env_id = request, env_id
    last_result = resolve(env_id, ctx)
  end
  return last_result
end

return policy
