-- After a flush: anything new since what it flushed? Re-arm the tick; else disarm. One step,
-- so a push that lands concurrently either is seen here or finds the tick gone and arms it.
-- KEYS: meta, text, sent, tick
-- ARGV: tick_grace_ms, defer_ms (> 0: the flush was held back; keep the tick that long)
-- Returns: 1 re-armed (caller enqueues the next flush), 0 disarmed
local status = redis.call('HGET', KEYS[1], 'status')
local defer = tonumber(ARGV[2])
if status == 'open' and defer > 0 then
  redis.call('SET', KEYS[4], '1', 'PX', defer + tonumber(ARGV[1]))
  return 1
end
local flushed = tonumber(redis.call('HGET', KEYS[3], 'flushed_b') or '0')
if status == 'open' and redis.call('STRLEN', KEYS[2]) > flushed then
  local interval = tonumber(redis.call('HGET', KEYS[1], 'interval_ms'))
  redis.call('SET', KEYS[4], '1', 'PX', interval + tonumber(ARGV[1]))
  return 1
end
redis.call('DEL', KEYS[4])
return 0
