-- Change freeze: during the freeze window, publishing to a protected
-- environment needs a change ticket id such as "CHG-1234" in the
-- request's remark. Outside the window, and for other environments,
-- everything is allowed.
--
--   apig-server --policy examples/policies/change_freeze.lua
--
-- A denied API fails alone in the batch answer with APIG.1005 and the
-- message below; the other APIs of the batch go on.

local window = require "apig.window"

-- Settings --------------------------------------------------------------

-- When changes are frozen: Friday 16:00 to Monday 06:00 UTC. Add
-- offset = "+08:00" for a local clock, or use window.dates / window.any
-- for holidays (see lua/apig/window.lua).
local FREEZE = window.weekly { from = "Fri 16:00", to = "Mon 06:00" }

-- Environments (by name) that the freeze protects.
local PROTECTED = { RELEASE = true }

-- Actions that the freeze covers; add offline = true to freeze taking
-- APIs offline too.
local ACTIONS = { online = true }

-- A Lua pattern for a ticket id anywhere in the remark.
local TICKET = "%f[%w]CHG%-%d+%f[%W]"

--------------------------------------------------------------------------

local policy = {}

local function decide(env_name, ctx)
  if not ACTIONS[ctx.action] or not PROTECTED[env_name] then
    return true
  end
  if not FREEZE:contains(ctx.time) or ctx.remark:find(TICKET) then
    return true
  end
  return false, ("%s is frozen from %s: put a change ticket id such as " ..
    "CHG-1234 in the remark"):format(env_name, FREEZE.text)
end

-- The answer depends only on the request (action, time, remark) and the
-- environment, so it is kept per request id and environment name: a
-- 1000-API batch decides once per environment.
local last_request, last_env, last_allowed, last_message

function policy.authorize(api, env, ctx)
  local request, env_name = ctx.request_id, env.name
  if request ~= last_request or env_name ~= last_env then
    last_request, last_env = request, env_name
    last_allowed, last_message = decide(env_name, ctx)
  end
  return last_allowed, last_message
end

return policy
