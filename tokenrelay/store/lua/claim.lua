-- Claim the streams that are due in one schedule (a sorted set of stream ids by due time, in
-- server ms): each claimed entry moves to claim_until, so a worker that dies with it leaves it
-- due again then (crash resumption without the broker).
local due_key = KEYS[1]
local limit, claim_ms, salt = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- Returns: {now_ms, next_due_ms or -1, id1, claim1, id2, claim2, ...}; each claim is the
-- entry's new score, unique to this claim (release.lua compares it)
local now = now_ms()
local out = {now, -1}
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'LIMIT', 0, limit)
  local claim = now + claim_ms + salt
  for _, id in ipairs(due) do
    redis.call('ZADD', due_key, claim, id)
    out[#out + 1] = id
    out[#out + 1] = claim
  end
end
local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
if first[2] then out[2] = math.floor(tonumber(first[2])) end
return out
