-- The customer state hash's field names, shared by rfm_fold.lua, log_compact.lua and the tally read
-- (prepended to each; the Python twin is state.adapters.state_hash). The names are one
-- letter because Redis stores them in every customer's hash: the long names of earlier versions
-- (``frequency``, ``monetary_cents``, ...) and their ``customer_id`` field were, by their lengths,
-- about 100 bytes of every customer's hash.
--   f frequency, m monetary_cents (present once any event is applied), r refunds,
--   a first_purchase_ms, z last_purchase_ms, n purchase_days, l log_base,
--   p0, p1, ... the purchase days (a stream of LEB128 day gaps, 60 bytes to a field: rfm_fold.lua;
--   versions before 2026-11-30 wrote d0, d1, ..., 3 base-62 characters a day, which the customer's
--   next purchase converts),
--   t0, t1, ... the customer's packed tally counters (state.adapters.packed_tallies), 60 bytes a field,
--   <topic>:<partition>[@<epoch>] the offset fences.
-- Values stay at most 64 bytes (Redis's hash-max-listpack-value): one longer value would turn the
-- whole hash into Redis's hashtable encoding, several times larger.
local EARLIER_NAMES = {
  {'frequency', 'f'}, {'monetary_cents', 'm'}, {'refunds', 'r'}, {'first_purchase_ms', 'a'},
  {'last_purchase_ms', 'z'}, {'purchase_days', 'n'}, {'log_base', 'l'},
}

-- A hash written by an earlier version (it has a ``customer_id`` field) is renamed in place, once,
-- in the same atomic call as whatever the script does next: every reader accepts both forms.
local function rename_earlier_fields(state)
  if redis.call('HEXISTS', state, 'customer_id') == 0 then return end
  for _, pair in ipairs(EARLIER_NAMES) do
    local value = redis.call('HGET', state, pair[1])
    if value then
      redis.call('HSET', state, pair[2], value)
      redis.call('HDEL', state, pair[1])
    end
  end
  local k = 0
  while true do
    local days = redis.call('HGET', state, 'days' .. k)
    if not days then break end
    redis.call('HSET', state, 'd' .. k, days)
    redis.call('HDEL', state, 'days' .. k)
    k = k + 1
  end
  redis.call('HDEL', state, 'customer_id')
end

-- A customer's packed tally counters (state.adapters.packed_tallies): the fields t0, t1, ... of
-- their state hash joined, or the string ``tp_key`` where earlier versions kept them (false: none);
-- and how many ``t`` fields held them. The first fields come in one HMGET.
local PACKED_READ = {'t0', 't1', 't2', 't3'}

local function read_packed(state, tp_key)
  local parts = {}
  for _, part in ipairs(redis.call('HMGET', state, unpack(PACKED_READ))) do
    if not part then break end
    parts[#parts + 1] = part
  end
  if #parts == #PACKED_READ then
    while true do
      local part = redis.call('HGET', state, 't' .. #parts)
      if not part then break end
      parts[#parts + 1] = part
    end
  end
  if #parts > 0 then return table.concat(parts), #parts end
  return redis.call('GET', tp_key), 0
end
