-- SDK-HMAC-SHA256 signing client for the specs, written from the algorithm:
--
--   canonical request = method \n canonical URI \n canonical query \n
--                       name:value \n ... \n (signed headers, then "\n")
--                       signed header names \n hex sha256(body)
--   string to sign    = "SDK-HMAC-SHA256\n" .. X-Sdk-Date .. "\n" ..
--                       hex sha256(canonical request)
--   signature         = hex HMAC-SHA256(key = SK bytes, string to sign)
--
-- Lua 5.4 has no SHA-256 in its standard library and Debian 12 ships no
-- crypto binding for 5.4, so digests come from the openssl command.
--
--   local sign = require "apig_sign"
--   local req = sign.request { ak = "AK", sk = "SK", method = "GET",
--     target = server.base .. "/envs", headers = { { "Host", "h" } },
--     signed = { "host", "x-sdk-date" } }
--   local status, body, headers = sign.send(server, req)

local t = require "apig_test"

local M = {}

local function openssl_hex(args, data)
  local path = os.tmpname()
  t.write_file(path, data)
  local out = t.capture("openssl dgst -sha256 " .. args .. " -r " ..
    t.shell_quote(path) .. " 2>&1")
  os.remove(path)
  local hex = out:match("^(%x+) ")
  assert(hex and #hex == 64, "openssl dgst failed: " .. out)
  return hex
end

function M.sha256_hex(data)
  return openssl_hex("", data)
end

--- HMAC-SHA256 of data, keyed with the bytes of key. The key travels to
--- openssl in hex, so any byte works.
function M.hmac_sha256_hex(key, data)
  local hexkey = key:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end)
  return openssl_hex("-mac HMAC -macopt hexkey:" .. hexkey, data)
end

--- Percent-encodes every byte but A-Z a-z 0-9 - _ . ~, in upper-case hex.
function M.encode(text)
  return (text:gsub("[^%w%-_%.~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

function M.decode(text)
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

--- The path decoded, split on "/", each segment encoded, and a "/" added
--- at the end when missing.
function M.canonical_uri(raw_path)
  local segments = {}
  for segment in (M.decode(raw_path) .. "/"):gmatch("([^/]*)/") do
    segments[#segments + 1] = M.encode(segment)
  end
  local uri = table.concat(segments, "/")
  if uri:sub(-1) ~= "/" then uri = uri .. "/" end
  return uri
end

--- Pairs decoded, sorted by key then value, encoded and joined with "&".
--- A piece without "=" is a key with an empty value.
function M.canonical_query(raw_query)
  local pairs_list = {}
  for piece in (raw_query or ""):gmatch("[^&]+") do
    local key, value = piece:match("^([^=]*)=(.*)$")
    if not key then key, value = piece, "" end
    pairs_list[#pairs_list + 1] = { M.decode(key), M.decode(value) }
  end
  table.sort(pairs_list, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local out = {}
  for i, pair in ipairs(pairs_list) do
    out[i] = M.encode(pair[1]) .. "=" .. M.encode(pair[2])
  end
  return table.concat(out, "&")
end

local function header_value(headers, name)
  for _, header in ipairs(headers) do
    if header[1]:lower() == name then
      return (header[2]:gsub("^[ \t]+", ""):gsub("[ \t]+$", ""))
    end
  end
  return ""
end

--- Builds the canonical request. r: method, target (raw path and query),
--- headers (list of { name, value }), signed (list of lower-case names),
--- body, content_sha256 (overrides the body hash).
function M.canonical_request(r)
  local path, query = r.target:match("^([^?]*)%??(.*)$")
  local lines = { r.method, M.canonical_uri(path), M.canonical_query(query) }
  for _, name in ipairs(r.signed) do
    lines[#lines + 1] = name .. ":" .. header_value(r.headers, name)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = table.concat(r.signed, ";")
  lines[#lines + 1] = r.content_sha256 or M.sha256_hex(r.body or "")
  return table.concat(lines, "\n")
end

function M.signature(sk, date, canonical)
  local to_sign = "SDK-HMAC-SHA256\n" .. date .. "\n" ..
    M.sha256_hex(canonical)
  return M.hmac_sha256_hex(sk, to_sign)
end

--- The X-Sdk-Date value of a Unix time (default now).
function M.sdk_date(unix_time)
  return os.date("!%Y%m%dT%H%M%SZ", unix_time or os.time())
end

--- Signs a request and returns a copy whose headers end with X-Sdk-Date
--- (unless r.headers has one) and Authorization. r as canonical_request,
--- plus ak, sk and date (default now). signed defaults to the Python SDK's
--- set of names that r.headers has, plus x-sdk-date.
function M.request(r)
  local req = { method = r.method, target = r.target, body = r.body or "",
                headers = {} }
  local date = r.date or M.sdk_date()
  local has_date = false
  for i, header in ipairs(r.headers or {}) do
    req.headers[i] = { header[1], header[2] }
    if header[1]:lower() == "x-sdk-date" then
      has_date = true
      date = header[2]
    end
  end
  if not has_date then
    req.headers[#req.headers + 1] = { "X-Sdk-Date", date }
  end
  local signed = r.signed
  if not signed then
    signed = {}
    for _, name in ipairs { "content-type", "host", "user-agent",
                            "x-project-id", "x-sdk-date" } do
      for _, header in ipairs(req.headers) do
        if header[1]:lower() == name then
          signed[#signed + 1] = name
          break
        end
      end
    end
  end
  local canonical = M.canonical_request {
    method = r.method, target = r.target, headers = req.headers,
    signed = signed, body = req.body, content_sha256 = r.content_sha256 }
  req.signature = M.signature(r.sk, date, canonical)
  req.headers[#req.headers + 1] = { "Authorization", string.format(
    "SDK-HMAC-SHA256 Access=%s, SignedHeaders=%s, Signature=%s", r.ak,
    table.concat(signed, ";"), req.signature) }
  return req
end

--- Copies a signed request, for tampering with it.
function M.copy(req)
  local out = { method = req.method, target = req.target, body = req.body,
                signature = req.signature, headers = {} }
  for i, header in ipairs(req.headers) do
    out.headers[i] = { header[1], header[2] }
  end
  return out
end

--- Returns the value of the first header named name (any case).
function M.get_header(req, name)
  for _, header in ipairs(req.headers) do
    if header[1]:lower() == name:lower() then return header[2] end
  end
  return nil
end

--- Replaces the value of the first header named name (any case).
function M.set_header(req, name, value)
  for _, header in ipairs(req.headers) do
    if header[1]:lower() == name:lower() then
      header[2] = value
      return
    end
  end
  error("no header " .. name)
end

--- Sends req = { method, target, headers, body } exactly as given, adding
--- only Content-Length when a body is present or the method is POST or
--- PUT. Returns status, decoded JSON body (or nil), headers, raw body.
function M.send(server, req)
  local lines = { req.method .. " " .. req.target .. " HTTP/1.1" }
  for _, header in ipairs(req.headers) do
    lines[#lines + 1] = header[1] .. ": " .. header[2]
  end
  local body = req.body or ""
  if body ~= "" or req.method == "POST" or req.method == "PUT" then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  local sock = server:connect()
  assert(sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
  local status, text, headers = t.read_response(sock)
  sock:close()
  local decoded = text and text ~= "" and t.json.decode(text) or nil
  return status, decoded, headers, text
end

return M
