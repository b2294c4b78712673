-- Time windows for policies: weekly ranges, daily hours and date ranges,
-- in UTC or at a fixed offset from UTC.
--
--   local window = require "apig.window"
--   local freeze = window.weekly { from = "Fri 16:00", to = "Mon 06:00" }
--   freeze:contains(ctx.time) -- true from Friday 16:00 to Monday 06:00 UTC
--   freeze.text               -- "Fri 16:00 to Mon 06:00 UTC"
--
--   window.daily { from = "22:00", to = "06:00", offset = "+08:00" }
--   window.daily { from = "09:00", to = "17:00", days = { "Sat", "Sun" } }
--   window.dates { from = "2024-12-23", to = "2025-01-02" }
--   window.dates { from = "2025-03-01 18:00", to = "2025-03-02 06:00" }
--   window.any { window.weekly { ... }, window.dates { ... } }
--
-- A window contains its start and not its end. A weekly or daily window
-- whose end comes before its start wraps (over the weekend, past
-- midnight); a daily window with `days` is listed under the day it
-- starts. A date without a time means the whole day: `from` at 00:00,
-- `to` up to the next midnight. An offset is fixed ("UTC", "Z", "+08:00",
-- "-05:30"): there are no time zone rules or daylight saving time.

local M = {}

local DAY_NAMES = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" }
local FULL_DAY_NAMES = { "monday", "tuesday", "wednesday", "thursday",
                         "friday", "saturday", "sunday" }
local MINUTES_PER_DAY = 24 * 60
local MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

local function fail(message) error(message, 0) end

-- "+08:00" to seconds east of UTC.
local function parse_offset(text)
  if text == nil or text == "UTC" or text == "Z" then return 0, "UTC" end
  local sign, hours, minutes = tostring(text):match("^([+-])(%d%d):(%d%d)$")
  hours, minutes = tonumber(hours), tonumber(minutes)
  if not sign or hours > 14 or minutes > 59 then
    fail(("invalid offset '%s': expected UTC or +hh:mm / -hh:mm")
      :format(tostring(text)))
  end
  local seconds = (hours * 60 + minutes) * 60
  return sign == "-" and -seconds or seconds, "UTC" .. text
end

-- "16:00" to minutes after midnight; "24:00" only when allow_end.
local function parse_clock(text, allow_end)
  local hours, minutes = tostring(text):match("^(%d%d?):(%d%d)$")
  hours, minutes = tonumber(hours), tonumber(minutes)
  local ok = hours and minutes <= 59 and
    (hours <= 23 or (allow_end and hours == 24 and minutes == 0))
  if not ok then
    fail(("invalid time '%s': expected hh:mm"):format(tostring(text)))
  end
  return hours * 60 + minutes
end

-- "Fri" or "Friday" (any case) to 0 (Monday) .. 6 (Sunday).
local function parse_day(text)
  local key = tostring(text):lower()
  for i, name in ipairs(DAY_NAMES) do
    if key == name or key == FULL_DAY_NAMES[i] then return i - 1 end
  end
  fail(("invalid day '%s': expected Mon, Tue, ... or Monday, ..."):format(
    tostring(text)))
end

-- Days since 1970-01-01 of a proleptic Gregorian date.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function days_in_month(y, m)
  if m == 2 then
    local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
    return leap and 29 or 28
  end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- "2025-01-02" or "2025-01-02 06:00" (or with "T") to local seconds;
-- a date alone is its midnight, or the next one when is_end.
local function parse_date(text, is_end)
  text = tostring(text)
  local y, m, d, rest = text:match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if not y or m < 1 or m > 12 or d < 1 or d > days_in_month(y, m) then
    fail(("invalid date '%s': expected YYYY-MM-DD [hh:mm]"):format(text))
  end
  local minutes
  if rest == "" then
    minutes = is_end and MINUTES_PER_DAY or 0
  else
    local clock = rest:match("^[ T](.+)$")
    if not clock then
      fail(("invalid date '%s': expected YYYY-MM-DD [hh:mm]"):format(text))
    end
    minutes = parse_clock(clock, is_end)
  end
  return days_from_civil(y, m, d) * 86400 + minutes * 60
end

local function check_time(t)
  if math.type(t) ~= "integer" then
    error("window: expected a time in Unix seconds, got " ..
      (math.type(t) or type(t)), 3)
  end
end

-- Minutes since Monday 00:00 of the week, at offset seconds east of UTC.
-- 1970-01-01 was a Thursday, day 3 of a week that starts on Monday.
local function minute_of_week(t, offset)
  local seconds = t + offset
  local weekday = (seconds // 86400 + 3) % 7
  return weekday * MINUTES_PER_DAY + (seconds % 86400) // 60
end

local function in_range(value, from, to)
  if from < to then return value >= from and value < to end
  return value >= from or value < to
end

local function build(spec, make)
  if type(spec) ~= "table" then
    error("window: expected a table of settings, got " .. type(spec), 3)
  end
  local ok, result = pcall(make, spec)
  if not ok then error("window: " .. result, 3) end
  return result
end

local function make_weekly(spec)
  local offset, zone = parse_offset(spec.offset)
  local function point(text, allow_end)
    local day, clock = tostring(text):match("^(%a+)%s+(%S+)$")
    if not day then
      fail(("invalid weekly time '%s': expected e.g. 'Fri 16:00'")
        :format(tostring(text)))
    end
    return parse_day(day) * MINUTES_PER_DAY + parse_clock(clock, allow_end)
  end
  local from, to = point(spec.from, false), point(spec.to, true)
  if from == to then fail("from and to must differ") end
  return {
    text = ("%s to %s %s"):format(spec.from, spec.to, zone),
    contains = function(_, t)
      check_time(t)
      return in_range(minute_of_week(t, offset), from, to)
    end,
  }
end

--- Every week from `from` to `to` ("Fri 16:00"), at `offset`.
function M.weekly(spec)
  local w = build(spec, make_weekly)
  return w
end

local function make_daily(spec)
  local offset, zone = parse_offset(spec.offset)
  local from, to = parse_clock(spec.from, false), parse_clock(spec.to, true)
  if from == to then fail("from and to must differ") end
  local days, day_text = nil, ""
  if spec.days ~= nil then
    if type(spec.days) ~= "table" or #spec.days == 0 then
      fail("days: expected a list of day names such as { 'Mon' }")
    end
    days = {}
    for _, name in ipairs(spec.days) do days[parse_day(name)] = true end
    day_text = " on " .. table.concat(spec.days, ", ")
  end
  return {
    text = ("%s to %s%s %s"):format(spec.from, spec.to, day_text, zone),
    contains = function(_, t)
      check_time(t)
      local minute = minute_of_week(t, offset)
      local day, clock = minute // MINUTES_PER_DAY, minute % MINUTES_PER_DAY
      if not in_range(clock, from, to) then return false end
      if not days then return true end
      -- Past midnight of a wrapping window, the window began yesterday.
      if from > to and clock < to then day = (day + 6) % 7 end
      return days[day] == true
    end,
  }
end

--- Every day (or the listed `days`) from `from` to `to` ("22:00").
function M.daily(spec)
  local w = build(spec, make_daily)
  return w
end

local function make_dates(spec)
  local offset, zone = parse_offset(spec.offset)
  local from, to = parse_date(spec.from, false), parse_date(spec.to, true)
  if from >= to then fail("from must come before to") end
  return {
    text = ("%s to %s %s"):format(spec.from, spec.to, zone),
    contains = function(_, t)
      check_time(t)
      local here = t + offset
      return here >= from and here < to
    end,
  }
end

--- Once, from `from` to `to` ("2025-01-02" or "2025-01-02 06:00").
function M.dates(spec)
  local w = build(spec, make_dates)
  return w
end

--- The union of a list of windows.
function M.any(windows)
  if type(windows) ~= "table" or #windows == 0 then
    error("window.any: expected a non-empty list of windows", 2)
  end
  local texts = {}
  for i, w in ipairs(windows) do
    if type(w) ~= "table" or type(w.contains) ~= "function" then
      error("window.any: entry " .. i .. " is not a window", 2)
    end
    texts[i] = w.text
  end
  return {
    text = table.concat(texts, " or "),
    contains = function(_, t)
      for _, w in ipairs(windows) do
        if w:contains(t) then return true end
      end
      return false
    end,
  }
end

return M
