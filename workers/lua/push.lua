-- Append a batch of tokens to a stream and arm its flush tick, in one atomic step.
-- Appending before arming is what makes "no lost tail" hold: a flush that settles after this
-- either sees the new text or has already disarmed, so the SET NX below succeeds.
-- KEYS: meta, text, sent, tick, marks
-- ARGV: chunk, mark (1: the chunk ends at a tool boundary), tick_grace_ms, max_bytes,
--       task id for the flush the caller enqueues if this arms the tick
-- Returns: countdown in ms for that flush; -1 nothing to enqueue;
--          -2 stream is closed; -3 unknown or expired stream; -4 over max_bytes (nothing appended)
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -3 end
if status ~= 'open' then return -2 end
local chunk = ARGV[1]
local length = redis.call('STRLEN', KEYS[2])
if #chunk > 0 then
  if length + #chunk > tonumber(ARGV[4]) then return -4 end
  length = redis.call('APPEND', KEYS[2], chunk)
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[2] == '1' then
  redis.call('RPUSH', KEYS[5], length)
  redis.call('EXPIRE', KEYS[5], redis.call('TTL', KEYS[1]))
end
if #chunk > 0 then redis.call('HSET', KEYS[1], 'touched_ms', now_ms) end
local flushed = tonumber(redis.call('HGET', KEYS[3], 'flushed_b') or '0')
if length <= flushed then return -1 end
local interval = tonumber(redis.call('HGET', KEYS[1], 'interval_ms'))
if not redis.call('SET', KEYS[4], ARGV[5], 'NX', 'PX', interval + tonumber(ARGV[3])) then
  return -1
end
local last = tonumber(redis.call('HGET', KEYS[3], 'flushed_at_ms') or '0')
if last == 0 then return 0 end
return math.max(0, last + interval - now_ms)
