-- Take one call's slot from every budget it draws on (e.g. one chat and the whole bot; one
-- Cluster slot: the budgets share their scope's hash tag), or hand out a place in line.
-- GCRA on server time decides when a slot is free; two queues per budget decide who gets it:
-- finals and first sends ('p') before interim edits ('i'), first come first served in each.
-- A caller that cannot go now gets a ticket: its own wake-up time, one emission interval after
-- the previous waiter's, so waiters never wake together (no thundering herd) and none starves.
-- A caller back with a ticket that has come due goes ahead of those still queued.
-- Budget hash fields: tat (theoretical arrival ms), lane_p / lane_i (last ticket of each
-- queue), served (ms of the last slot taken), factor and cut_ms (adaptive rate multiplier,
-- 0.1..1, cut by 429s at cut_ms, climbing back linearly with time).
local class, ticket, jitter = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- step_up: how much of the configured rate the adaptive factor regains per ms after a cut
local step_up = tonumber(ARGV[4])
-- ARGV[5..]: for each key, in KEYS order: emission ms, burst, adaptive (1/0)
-- Returns: {0} taken; {wait_ms, ticket_ms}: come back at ticket_ms (server time) with it
local now = now_ms()
local priority = class == 'p'
local holds_turn = ticket > 0 and ticket <= now + 2
local b = {}
local free = true
for i, key in ipairs(KEYS) do
  local base = 5 + (i - 1) * 3
  local h = redis.call('HMGET', key, 'tat', 'lane_p', 'lane_i', 'factor', 'cut_ms', 'served')
  local adaptive = ARGV[base + 2] == '1'
  local factor = 1
  if adaptive and h[4] then
    -- additive increase: the rate climbs back linearly in time since the last cut
    factor = math.min(1, tonumber(h[4]) + (now - tonumber(h[5] or '0')) * step_up)
  end
  local emission = tonumber(ARGV[base]) / factor
  local tolerance = emission * (tonumber(ARGV[base + 1]) - 1)
  -- interim edits leave one slot of the burst to finals and first sends
  if not priority then tolerance = math.max(0, tolerance - emission) end
  local tat = math.max(tonumber(h[1] or '0'), now)
  local lane_p, lane_i = tonumber(h[2] or '0'), tonumber(h[3] or '0')
  -- lines are work-conserving: when nobody took a slot for two emission intervals although a
  -- line promises waiters, its waiters are not back yet (their tickets were cut for a slower
  -- rate, or they left): the slot goes to whoever asks
  local idle = now - tonumber(h[6] or '0') > 2 * emission and tat - tolerance <= now
  if idle then lane_p, lane_i = 0, 0 end
  local x = {key = key, emission = emission, tat = tat, factor = factor, adaptive = adaptive,
    lane = priority and 'lane_p' or 'lane_i', own = priority and lane_p or lane_i}
  -- when this budget would let the call go: its clock, the callers queued ahead in its line
  -- (unless we hold our turn), and for interim edits every queued final and first send
  x.ready = tat - tolerance
  if not holds_turn and x.own > now then x.ready = math.max(x.ready, x.own + emission) end
  if not priority and lane_p > now then x.ready = math.max(x.ready, lane_p + emission) end
  x.blocked = x.ready > now
  if x.blocked then free = false end
  b[i] = x
end
if free then
  for _, x in ipairs(b) do
    local tat = x.tat + x.emission
    redis.call('HSET', x.key, 'tat', tat, 'served', now)
    redis.call('PEXPIRE', x.key, math.ceil(math.max(tat, x.own) - now) + 60000)
  end
  return {0}
end
-- the call waits: it joins the line of every budget that holds it back (each at its own place
-- there) and comes back when the last of them lets it go. A caller holding its turn only
-- waits for the clocks, keeping its place.
local wake = now
for _, x in ipairs(b) do
  if x.blocked then
    local place = math.ceil(x.ready + jitter * x.emission)
    if not holds_turn then
      redis.call('HSET', x.key, x.lane, place)
      redis.call('PEXPIRE', x.key, math.ceil(math.max(place, x.tat) - now) + 60000)
    end
    if place > wake then wake = place end
  end
end
return {wake - now, wake}
