-- Atomic, idempotent RFM fold of a batch of events: the Redis twin of state.customer.rfm.apply.
-- ARGV[1] = number of events n; event i (1-based) has ARGV[a+1 .. a+10] with a = 1 + 10(i-1):
--   base, customer_id, event_id, fence_field, offset, type, occurred_at_ms, amount_cents, log member,
--   tallies.
-- KEYS[base .. base+3]: the customer's state hash, set of applied event_ids, set of UTC purchase days
-- and event log (zset by occurred_at_ms); all four share one hash tag. ``tallies`` is '' or a JSON
-- array of [key index, field, delta]: HINCRBY KEYS[key index] field delta, done only when the event
-- is applied (the counters of state.customer.store.Tally). Events are applied in order; each is atomic on its own.
-- Returns one code per event: 0 redelivered (offset fence), 1 duplicate event_id, 2 applied,
-- 3 applied to a new customer.
local DAY_MS = 86400000

local function fold(state, ids, days, log, customer_id, event_id, fence_field, offset, kind, at, cents, member)
  local fence = tonumber(redis.call('HGET', state, fence_field))
  if fence and tonumber(offset) <= fence then return 0 end
  redis.call('HSET', state, fence_field, offset)
  if redis.call('SADD', ids, event_id) == 0 then return 1 end
  local is_new = redis.call('HSETNX', state, 'customer_id', customer_id)
  redis.call('ZADD', log, at, member)
  redis.call('HINCRBY', state, 'monetary_cents', cents)
  if kind == 'refund' then
    redis.call('HINCRBY', state, 'refunds', 1)
  else
    redis.call('HINCRBY', state, 'frequency', 1)
    if redis.call('SADD', days, math.floor(tonumber(at) / DAY_MS)) == 1 then
      redis.call('HINCRBY', state, 'purchase_days', 1)
    end
    local first = tonumber(redis.call('HGET', state, 'first_purchase_ms'))
    if not first or tonumber(at) < first then redis.call('HSET', state, 'first_purchase_ms', at) end
    local last = tonumber(redis.call('HGET', state, 'last_purchase_ms'))
    if not last or tonumber(at) > last then redis.call('HSET', state, 'last_purchase_ms', at) end
  end
  return 2 + is_new
end

local codes = {}
for i = 1, tonumber(ARGV[1]) do
  local a = 1 + 10 * (i - 1)
  local b = tonumber(ARGV[a + 1])
  local code = fold(KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
                    ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9])
  if code >= 2 and ARGV[a + 10] ~= '' then
    for _, t in ipairs(cjson.decode(ARGV[a + 10])) do redis.call('HINCRBY', KEYS[t[1]], t[2], t[3]) end
  end
  codes[i] = code
end
return codes
