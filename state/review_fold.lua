-- Atomic, idempotent fold of a batch of reviews: the Redis twin of state.analytics.review_store.MemoryReviewStore.
-- KEYS[1] region counters hash (field '<counter>:<region>'), KEYS[2] set of counted regions; for review i
-- (1-based): KEYS[2i+1] the customer's counters hash (also its offset fences), KEYS[2i+2] its set of applied
-- review event_ids (both under the customer's hash tag).
-- ARGV[1] the most regions counted; for review i, ARGV[1 + 6(i-1) + 1 .. 6] = customer_id, event_id,
-- fence_field, offset, region, increments (counter names and deltas, '|'-separated: 'n|1|sum|4|s4|1|late|1').
-- Reviews are applied in order; each is atomic on its own. Returns one code per review:
-- 0 redelivered (offset fence), 1 duplicate event_id, 2 applied, 3 refused (region over the limit).

local function fold(regions, names, max_regions, state, ids, customer_id, event_id, fence_field, offset, region, added)
  if redis.call('SISMEMBER', names, region) == 0 and redis.call('SCARD', names) >= max_regions then return 3 end
  local fence = tonumber(redis.call('HGET', state, fence_field))
  if fence and tonumber(offset) <= fence then return 0 end
  redis.call('HSET', state, fence_field, offset)
  if redis.call('SADD', ids, event_id) == 0 then return 1 end
  redis.call('SADD', names, region)
  redis.call('HSETNX', state, 'customer_id', customer_id)
  local parts = {}
  for part in string.gmatch(added, '[^|]+') do parts[#parts + 1] = part end
  for j = 1, #parts, 2 do
    local delta = tonumber(parts[j + 1])
    redis.call('HINCRBY', state, parts[j], delta)
    redis.call('HINCRBY', regions, parts[j] .. ':' .. region, delta)
  end
  return 2
end

local max_regions = tonumber(ARGV[1])
local codes = {}
for i = 1, (#KEYS - 2) / 2 do
  local a = 1 + 6 * (i - 1)
  codes[i] = fold(KEYS[1], KEYS[2], max_regions, KEYS[2 * i + 1], KEYS[2 * i + 2], ARGV[a + 1], ARGV[a + 2],
                  ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6])
end
return codes
