-- Benchmark policy with all three hooks, each doing a little work: keep
-- the environment, allow every API outside a "blocked" group, and stamp
-- the remark with the caller.
local policy = {}

function policy.map_env(env_id, api, ctx)
  return env_id
end

function policy.authorize(api, env, ctx)
  if api.group_name == "blocked" then
    return false, "publishing from this group is not allowed"
  end
  return true
end

function policy.rewrite_remark(remark, api, env, ctx)
  return ("%s (by %s)"):format(remark or "", ctx.caller)
end

return policy
