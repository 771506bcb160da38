-- Compare-and-delete: release the lease only if we still own it (a clean end: no take-over).
local lease_key, sent_key = KEYS[1], KEYS[2]
local token = ARGV[1]
-- Returns: 1 released, 0 not ours
if redis.call('GET', lease_key) == token then
  redis.call('HDEL', sent_key, 'holder')
  return redis.call('DEL', lease_key)
end
return 0
