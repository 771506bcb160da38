-- The platform said 429 / retry after N: nobody takes from the budget it named before then.
-- When the answer does not say which limit was hit, the chat's budget waits it out and the
-- bot's adaptive rate backs off multiplicatively (it creeps back up in rate_take.lua).
local wait_key, adapt_key = KEYS[1], KEYS[2]
local retry_after_ms, tolerance_ms, cut = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local step_up = tonumber(ARGV[4])
-- Returns: the adaptive factor now in force (1 when none)
local now = now_ms()
local tat = now + retry_after_ms + tolerance_ms
local current = tonumber(redis.call('HGET', wait_key, 'tat') or '0')
if tat > current then redis.call('HSET', wait_key, 'tat', tat) end
redis.call('PEXPIRE', wait_key, tat - now + 60000)
if not adapt_key then return 1 end
-- multiplicative decrease, once per congestion event: the 429s of one burst cut once
local h = redis.call('HMGET', adapt_key, 'factor', 'cut_ms')
local cut_at = tonumber(h[2] or '0')
local factor = math.min(1, tonumber(h[1] or '1') + (now - cut_at) * step_up)
if now - cut_at >= 1000 then
  factor = math.max(0.1, factor * cut)
  redis.call('HSET', adapt_key, 'factor', factor, 'cut_ms', now)
  redis.call('PEXPIRE', adapt_key, 600000)
end
return tostring(factor)
