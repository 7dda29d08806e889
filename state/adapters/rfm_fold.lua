-- Atomic, idempotent RFM fold of a batch of events: the Redis twin of state.customer.rfm.apply.
-- ARGV[1] = number of events n, ARGV[2] = when the current event_id generation expires (unix
-- seconds), and optionally ARGV[3 + 9n] = the KEYS index of the running totals hash; event i
-- (1-based) has ARGV[a+1 .. a+9] with a = 2 + 9(i-1):
--   base, event_id, fence_field, offset, type, occurred_at_ms, amount_cents, log member, tallies.
-- The state hash's field names are in state_fields.lua, which the store prepends to this script.
-- KEYS[base .. base+5]: the customer's state hash, the event_ids applied in the current and in the
-- previous dedupe generation (sets, each expiring two generations after it began: the dedupe window,
-- see RedisStore), the unbounded event_id set of earlier versions (read, never written), the set of
-- UTC purchase days earlier versions kept (read, never written: the days are now a field of the state
-- hash) and the event log (zset by occurred_at_ms); all share one hash tag. ``tallies`` is '' or a JSON
-- array of the event's counters (state.customer.store.Tally), added only when the event is applied:
-- [key index, field, delta] is HINCRBY KEYS[key index] field delta (a shared table's hash);
-- [key index, table, field, delta] adds delta to a customer's packed counters, the MessagePack map
-- table -> {field -> count} (state.adapters.packed_tallies) that the fields t0, t1, ... of the
-- customer's state hash hold, 60 bytes a field; KEYS[key index] is the customer's ``:tp`` string,
-- where earlier versions kept the map: read if the hash has none, deleted once the map is written
-- back. The map is decoded once per call and written back at its end.
-- Events are applied in order; each is atomic on its own.
-- An event older than the customer's compacted log base (field ``l`` of the state hash, written
-- by log_compact.lua; the layout of state.customer.event_log.LogBase.encode) is folded into the base
-- instead of the log: the twin of LogBase.add. A *bare* base (the bound alone, no comma) stands for the
-- live state itself, written by log_compact.lua when the log is empty; the first event after the
-- bound writes it out in full (the live state before that event) so the base stays what it was.
-- Returns one code per event: 0 redelivered (offset fence), 1 duplicate event_id, 2 applied,
-- 3 applied to a new customer.
local DAY_MS = 86400000
local DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

-- A customer's purchase days (UTC days since 1970-01-01) are the fields ``p0``, ``p1``, ... of their
-- state hash, joined: one stream of LEB128 numbers (7 bits a byte, lowest first; every byte of a
-- number but its last has the high bit set), the first day and then the gap to each next day,
-- ascending. A day of 2026 takes 3 bytes and a gap under 128 days one, so a customer who buys every
-- few weeks costs about a byte a day (3 bytes each as base-62 text until 2026-11-30). 60 bytes to a
-- field: a value over Redis's hash-max-listpack-value, 64, would turn the whole hash into a table
-- several times larger. A number may straddle two fields: the stream is read joined.
local DAY_BYTES_PER_FIELD = 60

-- The day fields ``parts`` already read (``p0``, ``p1``, ... as far as they went), and the rest.
local function read_day_fields(state, parts)
  parts = parts or {}
  while true do
    local part = redis.call('HGET', state, 'p' .. #parts)
    if not part then return parts end
    parts[#parts + 1] = part
  end
end

local function decode_days(parts)
  local days, day, n, scale = {}, 0, 0, 1
  for _, part in ipairs(parts) do
    for _, byte in ipairs({string.byte(part, 1, -1)}) do  -- at most 60 values at once
      if byte >= 128 then
        n, scale = n + (byte - 128) * scale, scale * 128
      else
        day = day + n + byte * scale
        days[#days + 1] = day
        n, scale = 0, 1
      end
    end
  end
  return days
end

local function leb128(n, out)
  while n >= 128 do
    out[#out + 1] = string.char(128 + n % 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
end

local function encode_days(days)
  local out, previous = {}, 0
  for _, day in ipairs(days) do
    leb128(day - previous, out)
    previous = day
  end
  return table.concat(out)
end

-- Writes the stream ``raw`` over the fields ``parts`` held: only the fields whose bytes changed (a
-- day after the last rewrites the last field alone), then drops fields the stream no longer reaches.
local function write_days(state, raw, parts)
  local k = 0
  for at = 1, #raw, DAY_BYTES_PER_FIELD do
    local chunk = string.sub(raw, at, at + DAY_BYTES_PER_FIELD - 1)
    if parts[k + 1] ~= chunk then redis.call('HSET', state, 'p' .. k, chunk) end
    k = k + 1
  end
  for j = k, #parts - 1 do redis.call('HDEL', state, 'p' .. j) end
end

-- The days that versions before 2026-11-30 kept as 3 base-62 characters each in ``d0``, ``d1``, ...,
-- appended to ``days``; those fields are deleted. Whether there were any.
local function take_day_codes(state, days)
  local k = 0
  while true do
    local codes = redis.call('HGET', state, 'd' .. k)
    if not codes then return k > 0 end
    for i = 1, #codes, 3 do
      local day = 0
      for j = i, i + 2 do day = day * 62 + string.find(DIGITS, string.sub(codes, j, j), 1, true) - 1 end
      days[#days + 1] = day
    end
    redis.call('HDEL', state, 'd' .. k)
    k = k + 1
  end
end

-- Where ``day`` stands in the stream ``raw``, read without decoding it into a table (this runs for
-- every purchase): ``true`` if it is there; else the day before it (0: none) and, when a later day
-- follows, that day and the first and last byte of its number, which the new day's gap splits.
local function find_day(raw, day)
  local previous, n, scale, start = 0, 0, 1, 1
  for i = 1, #raw do
    local byte = string.byte(raw, i)
    if byte >= 128 then
      n, scale = n + (byte - 128) * scale, scale * 128
    else
      local current = previous + n + byte * scale
      if current == day then return true end
      if current > day then return false, previous, current, start, i end
      previous, n, scale, start = current, 0, 1, i + 1
    end
  end
  return false, previous
end

-- Whether ``day`` is a new purchase day of the customer, remembering it; ``old_days`` is the set
-- earlier versions kept (read, never written). ``parts``: the day fields the caller read; ``codes``:
-- whether the hash has an earlier version's ``d0``.
local function new_purchase_day(state, old_days, day, parts, codes)
  local days = {}
  if codes and take_day_codes(state, days) then  -- once per customer at most: an earlier version's text
    local seen = {}
    for _, d in ipairs(days) do seen[d] = true end
    for _, d in ipairs(decode_days(parts)) do
      if not seen[d] then days[#days + 1] = d end
    end
    table.sort(days)
    write_days(state, encode_days(days), parts)
    parts = read_day_fields(state)
  end
  local raw = table.concat(parts)
  local found, before, after, first, last = find_day(raw, day)
  if found or redis.call('SISMEMBER', old_days, day) == 1 then return false end
  local out = {}
  if after then  -- between ``before`` and ``after``: the gap to ``after`` splits in two
    out[1] = string.sub(raw, 1, first - 1)
    leb128(day - before, out)
    leb128(after - day, out)
    out[#out + 1] = string.sub(raw, last + 1)
  else
    out[1] = raw
    leb128(day - before, out)
  end
  write_days(state, table.concat(out), parts)
  return true
end

local function split(text)
  local parts = {}
  for part in string.gmatch(text .. ',', '([^,]*),') do parts[#parts + 1] = part end
  return parts
end

-- Fold a late event into the base ``b`` (split fields, updated in place); returns the new field.
local function add_to_base(b, kind, at, cents, new_day)
  local function plus(i, n) b[i] = string.format('%d', tonumber(b[i]) + n) end
  plus(3, tonumber(cents))
  if kind == 'refund' then
    plus(4, 1)
  else
    plus(2, 1)
    if b[5] == '' or tonumber(at) < tonumber(b[5]) then b[5] = at end
    if b[6] == '' or tonumber(at) > tonumber(b[6]) then b[6] = at end
    if new_day then plus(7, 1) end
  end
  return table.concat(b, ',')
end

-- What an event reads of the state hash, in one HMGET after its offset fence: an earlier
-- version's marker, the totals and bounds, the log base, an earlier version's day text and the
-- first day fields (``read_day_fields`` reads on when all of those are there).
local STATE_READ = {'customer_id', 'm', 'f', 'r', 'n', 'a', 'z', 'l', 'd0', 'p0', 'p1', 'p2', 'p3'}
local FIRST_DAY_FIELD = 10  -- p0's index in STATE_READ (in the HMGET's reply one more: the fence comes first)

local function fold(state, ids, previous_ids, old_ids, days, log, expire_at, event_id, fence_field, offset,
                    kind, at, cents, member)
  local v = redis.call('HMGET', state, fence_field, unpack(STATE_READ))
  local fence = tonumber(v[1])
  if fence and tonumber(offset) <= fence then return 0 end
  if redis.call('SISMEMBER', previous_ids, event_id) == 1 or redis.call('SISMEMBER', old_ids, event_id) == 1
      or redis.call('SADD', ids, event_id) == 0 then
    redis.call('HSET', state, fence_field, offset)
    return 1
  end
  redis.call('EXPIREAT', ids, expire_at)
  if v[2] then  -- written by an earlier version: renamed in place, then read again
    rename_earlier_fields(state)
    v = redis.call('HMGET', state, fence_field, unpack(STATE_READ))
  end
  local m, f, r, n, first, last, base, codes = v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]
  local parts = {}
  for i = FIRST_DAY_FIELD + 1, #STATE_READ + 1 do
    if not v[i] then break end
    parts[#parts + 1] = v[i]
  end
  if #parts == #STATE_READ + 1 - FIRST_DAY_FIELD then parts = read_day_fields(state, parts) end
  local is_new = m and 0 or 1  -- every applied event adds to m
  local new_day = kind ~= 'refund' and new_purchase_day(state, days, math.floor(tonumber(at) / DAY_MS), parts, codes)
  local writes = {fence_field, offset}
  local b = base and split(base)
  if b and #b == 1 then
    if tonumber(at) >= tonumber(b[1]) then  -- late events leave a bare base as it is: the live state
      writes[#writes + 1] = 'l'
      writes[#writes + 1] = table.concat({b[1], f or '0', m or '0', r or '0', first or '', last or '', n or '0'}, ',')
      redis.call('ZADD', log, at, member)
    end
  elseif b and tonumber(at) < tonumber(b[1]) then
    writes[#writes + 1] = 'l'
    writes[#writes + 1] = add_to_base(b, kind, at, cents, new_day)
  else
    redis.call('ZADD', log, at, member)
  end
  redis.call('HINCRBY', state, 'm', cents)  -- exact however large the sum (Lua's numbers are doubles)
  local function count(field, value)
    writes[#writes + 1] = field
    writes[#writes + 1] = string.format('%d', (tonumber(value) or 0) + 1)
  end
  if kind == 'refund' then
    count('r', r)
  else
    count('f', f)
    if new_day then count('n', n) end
    if not first or tonumber(at) < tonumber(first) then
      writes[#writes + 1] = 'a'
      writes[#writes + 1] = at
    end
    if not last or tonumber(at) > tonumber(last) then
      writes[#writes + 1] = 'z'
      writes[#writes + 1] = at
    end
  end
  redis.call('HSET', state, unpack(writes))
  return 2 + is_new
end

-- The customers' packed counters this call touched, decoded: ``:tp`` key -> {table -> {field -> count}};
-- and how many ``t`` fields of the state hash held them when read.
local packed, packed_held = {}, {}
local PACKED_PER_FIELD = 60

-- The state hash of a customer's ``:tp`` key (the same name less the suffix, the same hash slot).
local function state_of(tp_key) return string.sub(tp_key, 1, -4) end

-- Writes ``raw`` over the ``held`` fields the counters were read from, in one HSET (and one HDEL of
-- those it no longer reaches), and drops the earlier versions' string.
local function write_packed(state, tp_key, raw, held)
  local fields = {}
  for at = 1, #raw, PACKED_PER_FIELD do
    fields[#fields + 1] = 't' .. (#fields / 2)
    fields[#fields + 1] = string.sub(raw, at, at + PACKED_PER_FIELD - 1)
  end
  redis.call('HSET', state, unpack(fields))
  local gone = {}
  for k = #fields / 2, held - 1 do gone[#gone + 1] = 't' .. k end
  if #gone > 0 then redis.call('HDEL', state, unpack(gone)) end
  redis.call('DEL', tp_key)
end

local function add_packed(key, tbl, field, delta)
  local counts = packed[key]
  if not counts then
    local raw, held = read_packed(state_of(key), key)
    counts = raw and cmsgpack.unpack(raw) or {}
    packed[key], packed_held[key] = counts, held
  end
  local fields = counts[tbl]
  if not fields then
    fields = {}
    counts[tbl] = fields
  end
  fields[field] = (fields[field] or 0) + delta
end

local codes = {}
for i = 1, tonumber(ARGV[1]) do
  local a = 2 + 9 * (i - 1)
  local b = tonumber(ARGV[a + 1])
  local code = fold(KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5], ARGV[2],
                    ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8])
  if code >= 2 and ARGV[a + 9] ~= '' then
    for _, t in ipairs(cjson.decode(ARGV[a + 9])) do
      if #t == 4 then
        add_packed(KEYS[t[1]], t[2], t[3], t[4])
      else
        redis.call('HINCRBY', KEYS[t[1]], t[2], t[3])
      end
    end
  end
  codes[i] = code
end
for key, counts in pairs(packed) do write_packed(state_of(key), key, cmsgpack.pack(counts), packed_held[key]) end
-- On a single node the running totals (state.customer.store.Stats) are counted in the same atomic
-- call: a worker killed right after the fold cannot leave applied events uncounted (their
-- redelivery would count as redelivered). ARGV after the events: the KEYS index of the totals hash.
local totals = tonumber(ARGV[3 + 9 * tonumber(ARGV[1])])
if totals then
  local names = {[0] = 'redelivered', [1] = 'duplicates', [2] = 'applied', [3] = 'applied'}
  local counts = {}
  for _, code in ipairs(codes) do
    counts[names[code]] = (counts[names[code]] or 0) + 1
    if code == 3 then counts.customers = (counts.customers or 0) + 1 end
  end
  for name, n in pairs(counts) do redis.call('HINCRBY', KEYS[totals], name, n) end
end
return codes
