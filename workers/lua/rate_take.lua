-- GCRA over several budgets at once (e.g. one chat and the whole bot): take a slot from every
-- budget, or from none. Server TIME, so any number of workers on any hosts share one clock.
-- KEYS: one theoretical-arrival-time key per budget
-- ARGV: for each key: emission interval ms, tolerance ms (pairs, in KEYS order)
-- Returns: 0 taken, else the ms to wait before a slot is free in every budget
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now_ms)
  tats[i] = tat
  local excess = tat - now_ms - tonumber(ARGV[2 * i])
  if excess > wait then wait = excess end
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[2 * i - 1])
  redis.call('SET', key, tats[i] + emission, 'PX', math.ceil(tats[i] + emission - now_ms) + 1000)
end
return 0
