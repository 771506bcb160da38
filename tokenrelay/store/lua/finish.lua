-- Publish the stream's final result: commit the last sent state, mark the stream closed, give
-- every key the short result TTL and tell the producer's listener. Lease owner only, once.
local lease_key, meta_key, sent_key, text_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local marks_key, tick_key, orphans_key, result_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local token, expected, doc = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local result, result_ttl_s, stream_id = ARGV[4], tonumber(ARGV[5]), ARGV[6]
-- Returns: 1 published, 0 fenced off or already published
if redis.call('GET', lease_key) ~= token then return 0 end
if redis.call('EXISTS', result_key) == 1 then return 0 end
local version = tonumber(redis.call('HGET', sent_key, 'version') or '0')
if version ~= expected then return 0 end
redis.call('HSET', sent_key, 'version', version + 1, 'doc', doc)
redis.call('HDEL', sent_key, 'holder', 'sending')
redis.call('SET', result_key, result, 'EX', result_ttl_s)
redis.call('HSET', meta_key, 'status', 'closed', 'finished_ms', now_ms())
redis.call('DEL', tick_key, lease_key)
for _, key in ipairs({meta_key, sent_key, text_key, marks_key, orphans_key}) do
  redis.call('EXPIRE', key, result_ttl_s)
end
local notify = redis.call('HGET', meta_key, 'notify')
if notify then redis.call('PUBLISH', notify, stream_id) end
return 1
