-- End a flush: commit the sent state (fenced), release the lease, and hand the stream's flush
-- schedule on or end it, in one step. A push that lands concurrently either is seen here or
-- finds the tick gone and arms it itself (no lost tail).
local lease_key, meta_key, sent_key, text_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tick_key, orphans_key = KEYS[5], KEYS[6]
local token, expected, doc = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local flushed_b, delivered_b, read_b, read_c = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local stamp = ARGV[8] == '1'
local defer_ms, ticket_ms = tonumber(ARGV[9]), ARGV[10]
local tick_grace_ms, orphans_done = tonumber(ARGV[11]), tonumber(ARGV[12])
-- Returns: {'fenced'}; {'armed', version, due_ms}: schedule the next flush at due_ms;
--          {'quiet', version}: nothing more to do until a push arms the stream again
if redis.call('GET', lease_key) ~= token then return {'fenced'} end
-- the state was lost (evicted, flushed) mid-pass: never recreate it without its TTL
if redis.call('EXISTS', sent_key) == 0 or redis.call('EXISTS', meta_key) == 0 then
  return {'fenced'}
end
local version = tonumber(redis.call('HGET', sent_key, 'version') or '0')
if version ~= expected then return {'fenced'} end
local now = now_ms()
version = version + 1
redis.call('HSET', sent_key, 'version', version, 'doc', doc, 'flushed_b', flushed_b,
  'delivered_b', delivered_b, 'read_b', read_b, 'read_c', read_c, 'ticket_ms', ticket_ms)
if stamp then redis.call('HSET', sent_key, 'flushed_at_ms', now) end
if orphans_done > 0 then redis.call('LTRIM', orphans_key, orphans_done, -1) end
redis.call('DEL', lease_key)
redis.call('HDEL', sent_key, 'holder', 'sending')
local status = redis.call('HGET', meta_key, 'status')
local due = -1
if defer_ms >= 0 then
  due = now + defer_ms
elseif status == 'open' and redis.call('STRLEN', text_key) > tonumber(flushed_b) then
  local last = tonumber(redis.call('HGET', sent_key, 'flushed_at_ms') or '0')
  due = math.max(now, last + tonumber(redis.call('HGET', meta_key, 'interval_ms')))
end
if due < 0 then
  redis.call('DEL', tick_key)
  return {'quiet', version}
end
if status == 'open' then
  redis.call('SET', tick_key, due, 'PX', due - now + tick_grace_ms)
end
return {'armed', version, due}
