-- Extend the lease, only if we still own it. With 'up', never shorten it (the background
-- renewal must not cut a lease that a slow call extended).
local lease_key = KEYS[1]
local token, lease_ms, up = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
-- Returns: 1 renewed, 0 lost
if redis.call('GET', lease_key) ~= token then return 0 end
if not up or redis.call('PTTL', lease_key) < lease_ms then
  redis.call('PEXPIRE', lease_key, lease_ms)
end
return 1
