-- wrk script for benches/hostile.py's hostile routes: tests/oidc/token-post.lua's request, with
-- HOSTILE_DELAY_MS (default 20) between a connection's requests, so a hostile route sends at a
-- bounded rate (a bad neighbour, not a flood of extra traffic).
dofile(os.getenv("TOKEN_LUA"))
local pause = tonumber(os.getenv("HOSTILE_DELAY_MS") or "20")
function delay()
  return pause
end
