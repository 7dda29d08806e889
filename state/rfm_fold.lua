-- Atomic, idempotent RFM fold of a batch of events: the Redis twin of state.rfm.apply.
-- For event i (1-based): KEYS[4i-3] customer state hash, KEYS[4i-2] its set of applied event_ids,
-- KEYS[4i-1] its set of UTC purchase days, KEYS[4i] its event log (zset by occurred_at_ms; all four share
-- one hash tag), ARGV[8(i-1)+1 .. 8i] = customer_id, event_id, fence_field, offset, type, occurred_at_ms,
-- amount_cents, log member. Events are applied in order; each is atomic on its own.
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
for i = 1, #KEYS / 4 do
  local a = 8 * (i - 1)
  codes[i] = fold(KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i], ARGV[a + 1], ARGV[a + 2],
                  ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8])
end
return codes
