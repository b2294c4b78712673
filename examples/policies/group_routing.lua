-- Group routing: which APIs may go to which environments, by group and
-- route. The first rule that matches an API decides:
--   - envs: the environment names it may be published to or taken
--     offline from; a batch without env_id sends it to the first one;
--   - deny: a message, to reject the API in every environment.
-- An API that no rule matches is rejected with APIG.1103.
--
--   apig-server --policy examples/policies/group_routing.lua

local match = require "apig.match"

-- Rules ------------------------------------------------------------------

local RULES = {
  { match = { group_name = "payments" }, envs = { "RELEASE", "TEST" } },
  { match = { group_pattern = "^internal" }, envs = { "TEST" } },
  { match = { uri_prefix = "/admin/", method = { "POST", "PUT", "DELETE" } },
    deny = "admin write routes are published by the platform team" },
  { match = { group_pattern = "^sandbox" }, envs = { "TEST" } },
}

--------------------------------------------------------------------------

-- Each rule's environment names as a set, for authorize.
for _, rule in ipairs(RULES) do
  rule.allowed = {}
  for _, name in ipairs(rule.envs or {}) do rule.allowed[name] = true end
end

local route = match.first(RULES)

local policy = {}

-- A batch without env_id goes to the first environment of the rule.
function policy.map_env(env_id, api, ctx)
  if env_id ~= nil then return nil end
  local rule = route(api)
  if not rule or not rule.envs then return nil end
  local name = rule.envs[1]
  return ctx.envs[name] or name
end

function policy.authorize(api, env, ctx)
  local rule = route(api)
  if not rule then
    return false, ("group %s has no routing rule"):format(api.group_name),
      "APIG.1103"
  end
  if rule.deny then return false, rule.deny end
  if not rule.allowed[env.name] then
    return false, ("group %s may be published only to %s"):format(
      api.group_name, table.concat(rule.envs, ", ")), "APIG.1103"
  end
  return true
end

return policy
