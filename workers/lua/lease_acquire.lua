-- Take the stream's lease if it is free (or already ours).
-- KEYS: lease   ARGV: owner token, ttl_ms
-- Returns: 1 taken, or the ms the current holder's lease still lives (>= 1)
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return math.max(2, redis.call('PTTL', KEYS[1]))
