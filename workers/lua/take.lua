-- Seed-compatible take(): cut the not-yet-delivered tail off the stream and return it.
-- Refused while a worker holds the lease, so an in-flight flush cannot deliver what is taken.
-- KEYS: lease, text, sent, marks
-- Returns: {1, tail} taken, {0, pttl} busy
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
local delivered = tonumber(redis.call('HGET', KEYS[3], 'delivered_b') or '0')
local tail = redis.call('GETRANGE', KEYS[2], delivered, -1)
if #tail > 0 then
  local head = ''
  if delivered > 0 then head = redis.call('GETRANGE', KEYS[2], 0, delivered - 1) end
  redis.call('SET', KEYS[2], head, 'KEEPTTL')
  redis.call('HSET', KEYS[3], 'flushed_b', delivered)
  while true do
    local last = redis.call('LINDEX', KEYS[4], -1)
    if not last or tonumber(last) <= delivered then break end
    redis.call('RPOP', KEYS[4])
  end
end
return {1, tail}
