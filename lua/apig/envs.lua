-- Environment aliases for map_env: short names such as "prod" in the
-- request's env_id become the id of an environment found by its name.
--
-- Environment ids are random, so a policy names environments and looks
-- their ids up in ctx.envs (a read-only table of name to id of the
-- instance's environments). RELEASE is there as "RELEASE".
--
--   local envs = require "apig.envs"
--   local resolve = envs.resolver {
--     aliases = { prod = "RELEASE", test = "TEST" }, -- alias to name
--     names = true,       -- an env_id that is an environment name works too
--     fallback = "test",  -- alias or name used when the request has none
--   }
--   function policy.map_env(env_id, api, ctx)
--     return resolve(env_id, ctx)
--   end
--
-- resolve(env_id, ctx) returns:
--   - the id of the aliased environment when env_id is an alias
--     (aliases match case-insensitively);
--   - with names = true, the id of the environment named env_id;
--   - with no env_id, the id of the fallback (an alias or a name), else
--     nil;
--   - nil otherwise, which keeps the request's env_id.
-- An alias or fallback whose environment does not exist returns the
-- environment's name, so the API fails with "Environment TEST does not
-- exist".

local M = {}

--- Returns the id of the environment named name, or nil.
function M.id(ctx, name)
  return ctx.envs[name]
end

--- Returns the name of the environment whose id is id, or nil.
function M.name(ctx, id)
  for name, env_id in pairs(ctx.envs) do
    if env_id == id then return name end
  end
  return nil
end

local function check_spec(spec)
  if type(spec) ~= "table" then
    error("envs.resolver: expected a table of settings, got " ..
      type(spec), 3)
  end
  local aliases = {}
  for alias, name in pairs(spec.aliases or {}) do
    if type(alias) ~= "string" or type(name) ~= "string" then
      error("envs.resolver: aliases must map strings to environment names",
        3)
    end
    aliases[alias:lower()] = name
  end
  if spec.fallback ~= nil and type(spec.fallback) ~= "string" then
    error("envs.resolver: fallback must be an alias or environment name", 3)
  end
  return aliases
end

--- Returns function(env_id, ctx) for map_env; see the header.
function M.resolver(spec)
  local aliases = check_spec(spec)
  local names, fallback = spec.names == true, spec.fallback
  local function resolve(env_id, ctx)
    local name = aliases[env_id:lower()]
    if name then return ctx.envs[name] or name end
    if names then return ctx.envs[env_id] end
    return nil
  end
  return function(env_id, ctx)
    if env_id ~= nil then return resolve(env_id, ctx) end
    if fallback == nil then return nil end
    local name = aliases[fallback:lower()] or fallback
    return ctx.envs[name] or name
  end
end

return M
