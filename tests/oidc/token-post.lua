-- wrk script: POST a client_credentials token request (form body).
--
--   wrk -t1 -c8 -d10s -s tests/oidc/token-post.lua http://127.0.0.1:PORT
--
-- Overridable with environment variables (read via os.getenv):
--   TOKEN_PATH           request path                 (default /token; hookgate: /oauth/token)
--   TOKEN_CLIENT_ID      client id                    (default m2m-post)
--   TOKEN_CLIENT_SECRET  client secret                (default m2m-post-secret)
--   TOKEN_AUTH           "post" (secret in the body) or "basic" (HTTP Basic) (default post)
--   TOKEN_RESOURCE       resource indicator; "" to omit (default https://api.example.com/)
--   TOKEN_AUDIENCE       Auth0-style audience param; "" to omit (default omitted)
--   TOKEN_SCOPE          space-separated scopes; "" to omit (default read:users)
--   TOKEN_BODY           the whole request body, used verbatim (overrides the above body fields)
--   TOKEN_CONTENT_TYPE   Content-Type (default application/x-www-form-urlencoded)
-- At the end it prints how many responses were not HTTP 200.

local function env(name, default)
  local v = os.getenv(name)
  if v == nil then return default end
  return v
end

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = string.byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
      .. (b and b64chars:sub(c3 + 1, c3 + 1) or "=")
      .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local path = env("TOKEN_PATH", "/token")
local client_id = env("TOKEN_CLIENT_ID", "m2m-post")
local client_secret = env("TOKEN_CLIENT_SECRET", "m2m-post-secret")
local auth = env("TOKEN_AUTH", "post")
local resource = env("TOKEN_RESOURCE", "https://api.example.com/")
local audience = env("TOKEN_AUDIENCE", "")
local scope = env("TOKEN_SCOPE", "read:users")
local content_type = env("TOKEN_CONTENT_TYPE", "application/x-www-form-urlencoded")

local headers = { ["Content-Type"] = content_type }
local body = os.getenv("TOKEN_BODY")
if body == nil then
  local fields = { "grant_type=client_credentials" }
  if auth == "basic" then
    -- RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
    headers["Authorization"] = "Basic " .. base64(urlencode(client_id) .. ":" .. urlencode(client_secret))
  else
    fields[#fields + 1] = "client_id=" .. urlencode(client_id)
    fields[#fields + 1] = "client_secret=" .. urlencode(client_secret)
  end
  if resource ~= "" then fields[#fields + 1] = "resource=" .. urlencode(resource) end
  if audience ~= "" then fields[#fields + 1] = "audience=" .. urlencode(audience) end
  if scope ~= "" then fields[#fields + 1] = "scope=" .. urlencode(scope) end
  body = table.concat(fields, "&")
elseif auth == "basic" then
  headers["Authorization"] = "Basic " .. base64(urlencode(client_id) .. ":" .. urlencode(client_secret))
end

wrk.method = "POST"
wrk.path = path
wrk.body = body
for k, v in pairs(headers) do wrk.headers[k] = v end

-- Count non-200 responses per thread; summed in done().
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non200 = 0
function response(status, _headers, _body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(_summary, _latency, _requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("non200") or 0) end
  io.write(string.format("non-200 responses: %d\n", total))
end
