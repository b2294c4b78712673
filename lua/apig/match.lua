-- Matches APIs by group, name, method and URI, for policy hooks.
--
-- A rule is a table whose fields must all match; a field holding a list
-- matches when any entry does. Fields:
--   group_id, group_name, name   exact strings
--   name_pattern, group_pattern  Lua patterns (string.find), e.g. "^pay"
--   method                       HTTP methods, case-insensitive ("get")
--   uri_prefix                   prefixes of req_uri ("/admin/")
--   type                         1 (public) or 2 (private)
-- An empty rule matches every API. An unknown field raises an error when
-- the rule is built, so a typo never widens a rule silently.
--
--   local match = require "apig.match"
--   local admin = match.rule { group_name = "backoffice",
--                              method = { "POST", "DELETE" },
--                              uri_prefix = "/admin/" }
--   function policy.authorize(api, env, ctx)
--     if admin(api) and env.name == "RELEASE" then
--       return false, "admin APIs stay out of RELEASE"
--     end
--     return true
--   end
--
--   -- The first entry whose rule (under `match`) matches wins:
--   local route = match.first {
--     { match = { group_name = "payments" }, env = "RELEASE" },
--     { match = { name_pattern = "^beta_" }, env = "TEST" },
--   }
--   local entry = route(api) -- one of the entries, or nil

local M = {}

local EXACT = { group_id = "group_id", group_name = "group_name",
                name = "name" }
local PATTERN = { name_pattern = "name", group_pattern = "group_name" }
local OTHER = { method = true, uri_prefix = true, type = true }

local function list_of(value, field)
  if type(value) ~= "table" then value = { value } end
  for _, entry in ipairs(value) do
    local expected = field == "type" and "number" or "string"
    if type(entry) ~= expected then
      error(("match rule field '%s': expected %s values, got %s"):format(
        field, expected, type(entry)), 0)
    end
  end
  return value
end

local function set_of(values, transform)
  local set = {}
  for _, v in ipairs(values) do set[transform and transform(v) or v] = true end
  return set
end

local function has_prefix(text, prefixes)
  for _, prefix in ipairs(prefixes) do
    if text:sub(1, #prefix) == prefix then return true end
  end
  return false
end

local function finds(text, patterns)
  for _, pattern in ipairs(patterns) do
    if text:find(pattern) then return true end
  end
  return false
end

-- Checks the rule's fields and compiles them into a list of tests.
local function compile(rule)
  if type(rule) ~= "table" then
    error("match rule: expected a table, got " .. type(rule), 0)
  end
  local tests = {}
  for field, value in pairs(rule) do
    if EXACT[field] then
      local key, set = EXACT[field], set_of(list_of(value, field))
      tests[#tests + 1] = function(api) return set[api[key]] == true end
    elseif PATTERN[field] then
      local key, patterns = PATTERN[field], list_of(value, field)
      tests[#tests + 1] = function(api)
        return finds(api[key] or "", patterns)
      end
    elseif field == "method" then
      local set = set_of(list_of(value, field), string.upper)
      tests[#tests + 1] = function(api)
        return set[(api.req_method or ""):upper()] == true
      end
    elseif field == "uri_prefix" then
      local prefixes = list_of(value, field)
      tests[#tests + 1] = function(api)
        return has_prefix(api.req_uri or "", prefixes)
      end
    elseif field == "type" then
      local set = set_of(list_of(value, field))
      tests[#tests + 1] = function(api) return set[api.type] == true end
    elseif not OTHER[field] then
      error("match rule: unknown field '" .. tostring(field) .. "'", 0)
    end
  end
  return tests
end

local function predicate(rule)
  local tests = compile(rule)
  return function(api)
    for i = 1, #tests do
      if not tests[i](api) then return false end
    end
    return true
  end
end

-- Runs fn(arg), raising its error at the line that called the public
-- function, which must not tail-call build.
local function build(fn, arg)
  local ok, result = pcall(fn, arg)
  if not ok then error(result, 3) end
  return result
end

--- Returns a function(api) that is true when api matches rule.
function M.rule(rule)
  local matches = build(predicate, rule)
  return matches
end

local function first(entries)
  if type(entries) ~= "table" then
    error("match.first: expected a list of entries, got " ..
      type(entries), 0)
  end
  local tests = {}
  for i, entry in ipairs(entries) do
    if type(entry) ~= "table" or type(entry.match) ~= "table" then
      error(("match.first: entry %d needs a rule table under 'match'")
        :format(i), 0)
    end
    tests[i] = predicate(entry.match)
  end
  return function(api)
    for i = 1, #tests do
      if tests[i](api) then return entries[i] end
    end
    return nil
  end
end

--- Returns a function(api) that gives the first entry whose `match` rule
--- matches api, or nil.
function M.first(rules)
  local pick = build(first, rules)
  return pick
end

return M
