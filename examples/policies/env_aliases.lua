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

function policy.map_env(env_id, api, ctx)
  return resolve(env_id, ctx)
end

return policy
