-- Register a new stream, all keys with their TTL, in one step; refuse an id in use.
-- KEYS: meta, text, sent
-- ARGV: ttl seconds, then meta field/value pairs
-- Returns: 1 created, 0 the id exists
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[1])
local fields = {'status', 'open', 'created_ms', now_ms, 'touched_ms', now_ms}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], '', 'EX', ttl)
redis.call('HSET', KEYS[3], 'version', 0, 'flushed_b', 0, 'delivered_b', 0, 'read_b', 0,
  'read_c', 0)
redis.call('EXPIRE', KEYS[3], ttl)
return 1
