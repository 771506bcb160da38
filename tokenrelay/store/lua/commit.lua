-- Record the sent state, fenced: only the lease owner, and only on top of the version it read.
-- A stale worker can therefore never overwrite newer sent state.
local lease_key, sent_key = KEYS[1], KEYS[2]
local token, expected, doc = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local flushed_b, delivered_b, read_b, read_c = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local stamp = ARGV[8] == '1'
-- Returns: the new version, or -1 when fenced off
if redis.call('GET', lease_key) ~= token then return -1 end
-- the state was lost (evicted, flushed) mid-pass: never recreate it without its TTL
if redis.call('EXISTS', sent_key) == 0 then return -1 end
local version = tonumber(redis.call('HGET', sent_key, 'version') or '0')
if version ~= expected then return -1 end
redis.call('HSET', sent_key, 'version', version + 1, 'doc', doc, 'flushed_b', flushed_b,
  'delivered_b', delivered_b, 'read_b', read_b, 'read_c', read_c)
redis.call('HDEL', sent_key, 'sending')
if stamp then redis.call('HSET', sent_key, 'flushed_at_ms', now_ms()) end
return version + 1
