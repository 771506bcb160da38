-- Extend the lease, only if we still own it.
local lease_key = KEYS[1]
local token, lease_ms = ARGV[1], ARGV[2]
-- Returns: 1 renewed, 0 lost
if redis.call('GET', lease_key) == token then
  redis.call('PEXPIRE', lease_key, lease_ms)
  return 1
end
return 0
