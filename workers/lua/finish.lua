-- Publish the stream's final result and wake every waiter. Only the lease owner, only once.
-- KEYS: lease, meta, result, done, tick
-- ARGV: owner token, result JSON, result ttl seconds
-- Returns: 1 published, 0 fenced off or already published
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('RPUSH', KEYS[4], '1')
redis.call('EXPIRE', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'closed')
redis.call('DEL', KEYS[5])
return 1
