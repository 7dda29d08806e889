-- Atomic, idempotent RFM fold of one event: the Redis twin of state.rfm.apply.
-- KEYS[1] customer state hash, KEYS[2] set of applied event_ids (same hash tag)
-- ARGV: customer_id, event_id, fence_field, offset, type, occurred_at_ms, amount_cents
-- Returns 0 redelivered (offset fence), 1 duplicate event_id, 2 applied, 3 applied to a new customer.
local state, ids = KEYS[1], KEYS[2]
local offset = tonumber(ARGV[4])
local fence = tonumber(redis.call('HGET', state, ARGV[3]))
if fence and offset <= fence then return 0 end
redis.call('HSET', state, ARGV[3], ARGV[4])
if redis.call('SADD', ids, ARGV[2]) == 0 then return 1 end
local is_new = redis.call('HSETNX', state, 'customer_id', ARGV[1])
redis.call('HINCRBY', state, 'monetary_cents', ARGV[7])
if ARGV[5] == 'refund' then
  redis.call('HINCRBY', state, 'refunds', 1)
else
  redis.call('HINCRBY', state, 'frequency', 1)
  local at = tonumber(ARGV[6])
  local first = tonumber(redis.call('HGET', state, 'first_purchase_ms'))
  if not first or at < first then redis.call('HSET', state, 'first_purchase_ms', ARGV[6]) end
  local last = tonumber(redis.call('HGET', state, 'last_purchase_ms'))
  if not last or at > last then redis.call('HSET', state, 'last_purchase_ms', ARGV[6]) end
end
return 2 + is_new
