-- Compare-and-delete: release the lease only if we still own it.
-- KEYS: lease   ARGV: owner token   Returns: 1 released, 0 not ours
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
