-- After a flush: hand the stream's flush chain on, or end it. One step, so a push that lands
-- concurrently either is seen here or finds the tick gone and arms it (no lost tail).
-- The tick holds the Celery task id of the one scheduled flush: a flush whose id is not the
-- tick's (a duplicate, e.g. enqueued during a crash take-over) ends without re-arming, so a
-- stream never has two flush chains.
-- KEYS: meta, text, sent, tick
-- ARGV: tick_grace_ms, defer_ms (> 0: the flush was held back; next one after that long),
--       this flush's task id, the next flush's task id
-- Returns: 1 re-armed (caller enqueues the next flush with that id), 0 chain ended
local current = redis.call('GET', KEYS[4])
if current and current ~= ARGV[3] then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
local defer = tonumber(ARGV[2])
if status == 'open' and defer > 0 then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', defer + tonumber(ARGV[1]))
  return 1
end
local flushed = tonumber(redis.call('HGET', KEYS[3], 'flushed_b') or '0')
if status == 'open' and redis.call('STRLEN', KEYS[2]) > flushed then
  local interval = tonumber(redis.call('HGET', KEYS[1], 'interval_ms'))
  redis.call('SET', KEYS[4], ARGV[4], 'PX', interval + tonumber(ARGV[1]))
  return 1
end
if current then redis.call('DEL', KEYS[4]) end
return 0
