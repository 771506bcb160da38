-- Note that a send is about to go out (only the lease owner): if this worker dies before it
-- records the message, the next owner knows the chat may show a message nobody recorded.
local lease_key, sent_key = KEYS[1], KEYS[2]
local token, segment = ARGV[1], ARGV[2]
-- Returns: 1 noted, 0 not the owner
if redis.call('GET', lease_key) ~= token then return 0 end
redis.call('HSET', sent_key, 'sending', segment)
return 1
