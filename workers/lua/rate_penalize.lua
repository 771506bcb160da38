-- The platform said 429 / retry after N: nobody takes from this budget before then.
-- KEYS: budget key   ARGV: retry_after ms, tolerance ms
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local tat = now_ms + tonumber(ARGV[1]) + tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > current then
  redis.call('SET', KEYS[1], tat, 'PX', tat - now_ms + 1000)
end
return 1
