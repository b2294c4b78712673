-- Remark rewriter: prefixes the stored remark with the caller and the
-- change ticket id found in it, so the version history says who published
-- and why:
--
--   "CHG-1234 fix login" by alice -> "[alice CHG-1234] CHG-1234 fix login"
--   "hotfix" by alice             -> "[alice] hotfix"
--
-- The caller is the token's name or the AK ("developer" or the AK when the
-- server runs without a credentials file). A remark may hold at most 255
-- characters, so a long one is cut at a character boundary.
--
--   apig-server --policy examples/policies/remark_rewriter.lua

local TICKET = "%f[%w]CHG%-%d+%f[%W]"
local MAX_CHARS = 255

local policy = {}

-- Returns the first max characters of valid UTF-8 text.
local function cut(text, max)
  if utf8.len(text) <= max then return text end
  return text:sub(1, utf8.offset(text, max + 1) - 1)
end

local function rewrite(remark, caller)
  local ticket = remark:match(TICKET)
  local prefix = ticket and ("[%s %s]"):format(caller, ticket)
    or ("[%s]"):format(caller)
  if remark == "" then return cut(prefix, MAX_CHARS) end
  return cut(prefix .. " " .. remark, MAX_CHARS)
end

-- Every API of a batch carries the same remark and caller, so the last
-- result is kept and reused: a 1000-API batch rewrites once.
local last_remark, last_caller, last_result

function policy.rewrite_remark(remark, api, env, ctx)
  local caller = ctx.caller
  if remark ~= last_remark or caller ~= last_caller then
    last_remark, last_caller = remark, caller
    last_result = rewrite(remark, caller)
  end
  return last_result
end

return policy
