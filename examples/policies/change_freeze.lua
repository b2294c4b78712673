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

function policy.authorize(api, env, ctx)
  if not ACTIONS[ctx.action] or not PROTECTED[env.name] then
    return true
  end
  if not FREEZE:contains(ctx.time) or ctx.remark:find(TICKET) then
    return true
  end
  return false, ("%s is frozen from %s: put a change ticket id such as " ..
    "CHG-1234 in the remark"):format(env.name, FREEZE.text)
end

return policy
