-- Shared by every script (prepended at load time): the server's clock, the one clock that
-- every stored time and every deadline is measured on.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
