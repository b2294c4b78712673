-- Example policy for the embedding examples: DELETE APIs stay out of
-- RELEASE, and every stored remark names the tool that published it.
local policy = {}

function policy.authorize(api, env, ctx)
  if api.req_method == "DELETE" and env.name == "RELEASE" then
    return false, "DELETE APIs are not published to RELEASE"
  end
  return true
end

function policy.rewrite_remark(remark, api, env, ctx)
  return "[embedded] " .. (remark or "")
end

return policy
