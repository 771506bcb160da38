-- A worker created a message but lost the stream before recording it: hand the id to the
-- owner (not fenced: the owner deletes or adopts it, so no copy stays in the chat).
local orphans_key, meta_key = KEYS[1], KEYS[2]
local entry = ARGV[1]
-- Returns: the number of orphans waiting
local n = redis.call('RPUSH', orphans_key, entry)
local ttl = redis.call('TTL', meta_key)
if ttl > 0 then redis.call('EXPIRE', orphans_key, ttl) end
return n
