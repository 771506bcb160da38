-- Extend the lease, only if we still own it.
-- KEYS: lease   ARGV: owner token, ttl_ms   Returns: 1 renewed, 0 lost
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
