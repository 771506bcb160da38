-- Take one call's slot from every budget it draws on (e.g. one chat and the whole bot; one
-- Cluster slot: the budgets share their scope's hash tag), or hand out a place in line.
-- GCRA on server time decides when a slot is free; two queues per budget decide who gets it:
-- finals and first sends ('p') before interim edits ('i'), first come first served in each.
-- A caller that cannot go now gets a ticket: its own wake-up time, one emission interval after
-- the previous waiter's, so waiters never wake together (no thundering herd) and none starves.
-- A caller back with a ticket that has come due goes ahead of those still queued.
-- Budget hash fields: tat (theoretical arrival ms), lane_p / lane_i (last ticket of each
-- queue), factor (adaptive rate multiplier, 0.1..1, lowered by 429s, creeping back up).
local class, ticket, jitter = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local step_up = tonumber(ARGV[4])
-- ARGV[5..]: for each key, in KEYS order: emission ms, burst, adaptive (1/0)
-- Returns: {0} taken; {wait_ms, ticket_ms}: come back at ticket_ms (server time) with it
local now = now_ms()
local priority = class == 'p'
local holds_turn = ticket > 0 and ticket <= now + 2
local b = {}
local gcra_wait, lane_wait, prio_wait = 0, 0, 0
for i, key in ipairs(KEYS) do
  local base = 5 + (i - 1) * 3
  local h = redis.call('HMGET', key, 'tat', 'lane_p', 'lane_i', 'factor')
  local adaptive = ARGV[base + 2] == '1'
  local factor = adaptive and tonumber(h[4] or '1') or 1
  local emission = tonumber(ARGV[base]) / factor
  local tolerance = emission * (tonumber(ARGV[base + 1]) - 1)
  -- interim edits leave one slot of the burst to finals and first sends
  if not priority then tolerance = math.max(0, tolerance - emission) end
  local tat = math.max(tonumber(h[1] or '0'), now)
  local lane_p, lane_i = tonumber(h[2] or '0'), tonumber(h[3] or '0')
  local own = priority and lane_p or lane_i
  b[i] = {key = key, emission = emission, tat = tat, own = own, factor = factor,
    adaptive = adaptive, lane = priority and 'lane_p' or 'lane_i'}
  gcra_wait = math.max(gcra_wait, tat - now - tolerance)
  if not holds_turn and own > now then lane_wait = math.max(lane_wait, own + emission - now) end
  if not priority and lane_p > now then prio_wait = math.max(prio_wait, lane_p + emission - now) end
end
if gcra_wait <= 0 and lane_wait <= 0 and prio_wait <= 0 then
  for _, x in ipairs(b) do
    local tat = x.tat + x.emission
    redis.call('HSET', x.key, 'tat', tat)
    if x.adaptive and x.factor < 1 then
      redis.call('HSET', x.key, 'factor', math.min(1, x.factor + step_up))
    end
    redis.call('PEXPIRE', x.key, math.ceil(math.max(tat, x.own) - now) + 60000)
  end
  return {0}
end
local wake
if holds_turn then
  -- our turn: keep our place (behind pending finals and first sends), do not queue again
  wake = now + math.max(gcra_wait, prio_wait) + jitter * b[1].emission / 2
else
  wake = now + math.max(gcra_wait, lane_wait, prio_wait)
  for _, x in ipairs(b) do
    wake = math.max(wake, x.own + x.emission)
  end
  wake = math.ceil(wake + jitter * b[1].emission)
  for _, x in ipairs(b) do
    redis.call('HSET', x.key, x.lane, wake)
    redis.call('PEXPIRE', x.key, math.ceil(math.max(wake, x.tat) - now) + 60000)
  end
end
wake = math.ceil(wake)
return {wake - now, wake}
