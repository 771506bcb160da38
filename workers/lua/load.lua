-- Everything a flush needs, in one round trip: meta, sent state, the unsettled text, the marks.
-- KEYS: meta, sent, text, marks
-- Returns: {meta as flat list, sent as flat list, text from sent.read_b, marks, text length}
local read_b = tonumber(redis.call('HGET', KEYS[2], 'read_b') or '0')
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('GETRANGE', KEYS[3], read_b, -1),
  redis.call('LRANGE', KEYS[4], 0, -1),
  redis.call('STRLEN', KEYS[3]),
}
