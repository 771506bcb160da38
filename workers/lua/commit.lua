-- Record the sent state, fenced: only the lease owner, and only on top of the version it read.
-- A stale worker can therefore never overwrite newer sent state.
-- KEYS: lease, sent
-- ARGV: owner token, expected version, doc (JSON), flushed_b, delivered_b, read_b, read_c,
--       stamp (1: set flushed_at)
-- Returns: the new version, or -1 when fenced off
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local version = tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
if version ~= tonumber(ARGV[2]) then return -1 end
redis.call('HSET', KEYS[2], 'version', version + 1, 'doc', ARGV[3],
  'flushed_b', ARGV[4], 'delivered_b', ARGV[5], 'read_b', ARGV[6], 'read_c', ARGV[7])
if ARGV[8] == '1' then
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[2], 'flushed_at_ms',
    tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
end
return version + 1
