-- Settle a claimed schedule entry: reschedule it or remove it, unless somebody else moved it
-- since our claim (a push re-armed the stream): then their schedule stands.
local due_key = KEYS[1]
local id, claim, next_due = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- Returns: 1 settled as asked, 0 left as somebody else scheduled it
local score = redis.call('ZSCORE', due_key, id)
if score and tonumber(score) ~= claim then return 0 end
if next_due < 0 then
  redis.call('ZREM', due_key, id)
else
  redis.call('ZADD', due_key, next_due, id)
end
return 1
