-- Seed-compatible take(): cut the not-yet-delivered tail off the stream and return it.
-- Refused while a worker holds the lease, so an in-flight flush cannot deliver what is taken.
local lease_key, text_key, sent_key, marks_key, meta_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5]
-- Returns: {1, tail} taken, {0, pttl} busy
if redis.call('EXISTS', lease_key) == 1 then
  return {0, redis.call('PTTL', lease_key)}
end
-- a stopped stream's text is the final pass's to deliver (or already delivered): none to take
if redis.call('HGET', meta_key, 'status') ~= 'open' then return {1, ''} end
local delivered = tonumber(redis.call('HGET', sent_key, 'delivered_b') or '0')
local tail = redis.call('GETRANGE', text_key, delivered, -1)
if #tail > 0 then
  local head = ''
  if delivered > 0 then head = redis.call('GETRANGE', text_key, 0, delivered - 1) end
  redis.call('SET', text_key, head, 'KEEPTTL')
  redis.call('HSET', sent_key, 'flushed_b', delivered)
  while true do
    local last = redis.call('LINDEX', marks_key, -1)
    if not last or tonumber(last) <= delivered then break end
    redis.call('RPOP', marks_key)
  end
end
return {1, tail}
