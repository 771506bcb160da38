-- The producer is done: no more tokens. Idempotent.
-- KEYS: meta   ARGV: reason
-- Returns: the status before ('open' the first time), or false for an unknown stream
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'open' then
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'status', 'closing', 'close_reason', ARGV[1],
    'closed_ms', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
end
return status
