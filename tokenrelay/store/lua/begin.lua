-- Begin a flush: check the stream wants one, take its lease and read everything the planner
-- needs, in one round trip. An open stream is flushed only when its tick is armed and its
-- interval has passed since the last flush; a closing stream gets its final flush.
local meta_key, sent_key, text_key, marks_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease_key, tick_key, orphans_key = KEYS[5], KEYS[6], KEYS[7]
local token, lease_ms = ARGV[1], tonumber(ARGV[2])
-- Returns one of: {'gone'} (no such stream: never created, expired or lost), {'closed'},
-- {'idle'} (open, nothing armed), {'early', due_ms}, {'busy', due_ms: when the holder's lease
-- runs out},
-- {'ok', now_ms, taken_over (0/1), meta, sent, text from read_b, marks, text bytes, orphans}
if redis.call('EXISTS', meta_key) == 0 or redis.call('EXISTS', sent_key) == 0 then
  return {'gone'}
end
local status = redis.call('HGET', meta_key, 'status')
if status == 'closed' then return {'closed'} end
local now = now_ms()
if status == 'open' then
  if redis.call('EXISTS', tick_key) == 0 then return {'idle'} end
  local last = tonumber(redis.call('HGET', sent_key, 'flushed_at_ms') or '0')
  local due = last + tonumber(redis.call('HGET', meta_key, 'interval_ms'))
  local ticket = tonumber(redis.call('HGET', sent_key, 'ticket_ms') or '0')
  if ticket > due then due = ticket end
  if due > now + 5 then return {'early', due} end
end
local holder = redis.call('GET', lease_key)
if holder and holder ~= token then
  return {'busy', now + math.max(1, redis.call('PTTL', lease_key))}
end
redis.call('SET', lease_key, token, 'PX', lease_ms)
-- a holder that never released (killed, or its lease ran out mid-call) may still have a
-- platform call in flight: the caller re-asserts the text once that call cannot land any more
local previous = redis.call('HGET', sent_key, 'holder')
local taken_over = 0
if previous and previous ~= token then taken_over = 1 end
redis.call('HSET', sent_key, 'holder', token)
local read_b = tonumber(redis.call('HGET', sent_key, 'read_b') or '0')
return {
  'ok', now, taken_over,
  redis.call('HGETALL', meta_key),
  redis.call('HGETALL', sent_key),
  redis.call('GETRANGE', text_key, read_b, -1),
  redis.call('LRANGE', marks_key, 0, -1),
  redis.call('STRLEN', text_key),
  redis.call('LRANGE', orphans_key, 0, -1),
}
