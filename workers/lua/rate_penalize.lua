-- The platform said 429 / retry after N: nobody takes from the budget it named before then.
-- When the answer does not say which limit was hit, the chat's budget waits it out and the
-- bot's adaptive rate backs off multiplicatively (it creeps back up in rate_take.lua).
local wait_key, adapt_key = KEYS[1], KEYS[2]
local retry_after_ms, tolerance_ms, cut = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- Returns: the adaptive factor now in force (1 when none)
local now = now_ms()
local tat = now + retry_after_ms + tolerance_ms
local current = tonumber(redis.call('HGET', wait_key, 'tat') or '0')
if tat > current then redis.call('HSET', wait_key, 'tat', tat) end
redis.call('PEXPIRE', wait_key, tat - now + 60000)
if not adapt_key then return 1 end
local factor = math.max(0.1, tonumber(redis.call('HGET', adapt_key, 'factor') or '1') * cut)
redis.call('HSET', adapt_key, 'factor', factor)
redis.call('PEXPIRE', adapt_key, 600000)
return tostring(factor)
