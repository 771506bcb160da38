-- Register a new stream, all keys with their TTL, in one step; refuse an id in use.
local meta_key, text_key, sent_key = KEYS[1], KEYS[2], KEYS[3]
local ttl_s = tonumber(ARGV[1])
-- ARGV[2..]: meta field/value pairs
-- Returns: 1 created, 0 the id exists
if redis.call('EXISTS', meta_key) == 1 then return 0 end
local now = now_ms()
local fields = {'status', 'open', 'created_ms', now, 'touched_ms', now, 'alive_ms', now,
  'push_seq', 0}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', meta_key, unpack(fields))
redis.call('EXPIRE', meta_key, ttl_s)
redis.call('SET', text_key, '', 'EX', ttl_s)
redis.call('HSET', sent_key, 'version', 0, 'flushed_b', 0, 'delivered_b', 0, 'read_b', 0,
  'read_c', 0)
redis.call('EXPIRE', sent_key, ttl_s)
return now
