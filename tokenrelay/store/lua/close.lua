-- The producer is done (or the watchdog gave up on it): no more tokens. Idempotent.
local meta_key = KEYS[1]
local reason = ARGV[1]
-- Returns: the status before ('open' the first time), or false for an unknown stream
local status = redis.call('HGET', meta_key, 'status')
if not status then return false end
if status == 'open' then
  redis.call('HSET', meta_key, 'status', 'closing', 'close_reason', reason, 'closed_ms', now_ms())
end
return status
