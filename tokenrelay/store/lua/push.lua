-- Append one numbered chunk of tokens to a stream and arm its flush, in one atomic step.
-- A chunk is applied once: its sequence number must be above the last one applied, so a batch
-- re-sent after a lost answer never doubles text. Appending before arming is what makes "no
-- lost tail" hold: a flush that ends after this either sees the new text or has disarmed
-- already, so the tick below is free and this arms it.
local meta_key, text_key, sent_key, tick_key, marks_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5]
local chunk, mark, seq = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local max_bytes, tick_grace_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
-- Returns: {'armed', due_ms}: the caller schedules the flush at due_ms (server time);
--          {'quiet'}: nothing to schedule; {'closed'}; {'unknown'} (never created, or lost);
--          {'too_long'} (nothing appended)
local status = redis.call('HGET', meta_key, 'status')
if not status then return {'unknown'} end
if status ~= 'open' then return {'closed'} end
local now = now_ms()
local length = redis.call('STRLEN', text_key)
if seq > tonumber(redis.call('HGET', meta_key, 'push_seq') or '0') then
  if #chunk > 0 then
    if length + #chunk > max_bytes then return {'too_long'} end
    length = redis.call('APPEND', text_key, chunk)
  end
  if mark then
    redis.call('RPUSH', marks_key, length)
    redis.call('EXPIRE', marks_key, redis.call('TTL', meta_key))
  end
  redis.call('HSET', meta_key, 'push_seq', seq)
  if #chunk > 0 or mark then redis.call('HSET', meta_key, 'touched_ms', now) end
end
redis.call('HSET', meta_key, 'alive_ms', now)
if length <= tonumber(redis.call('HGET', sent_key, 'flushed_b') or '0') then return {'quiet'} end
if redis.call('EXISTS', tick_key) == 1 then return {'quiet'} end
local interval = tonumber(redis.call('HGET', meta_key, 'interval_ms'))
local last = tonumber(redis.call('HGET', sent_key, 'flushed_at_ms') or '0')
local due = math.max(now, last + interval)
redis.call('SET', tick_key, due, 'PX', due - now + tick_grace_ms)
return {'armed', due}
