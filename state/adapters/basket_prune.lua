-- Bounds a pair-count hash (lossy counting, Manku & Motwani, with an adaptive threshold).
-- KEYS[1]: pair counts (field -> f, added by the tallies), KEYS[2]: deltas (field -> d),
-- KEYS[3]: meta (threshold t, prunes, pruned). ARGV[1]: most fields kept before a prune runs,
-- ARGV[2]: most fields left by a prune.
-- Invariant: a pair's true count lies in [f, f + d], where d is the field's delta, or t for a field
-- the last prune did not see (it was deleted, if ever, with a true count of at most t then). A prune
-- raises t to the smallest value >= t that leaves at most ARGV[2] fields with f + d > t, deletes
-- the others (their true count is <= t) and records d = old t for fields it sees for the first time.
-- So every stored count is at most t below the truth, and every pair above t is stored.
-- Returns {fields deleted, threshold, fields left}.
local most, target = tonumber(ARGV[1]), tonumber(ARGV[2])
local size = redis.call('HLEN', KEYS[1])
local t = tonumber(redis.call('HGET', KEYS[3], 'threshold') or '0')
if size <= most then return {0, t, size} end

local flat = redis.call('HGETALL', KEYS[1])
local known = {}
local dflat = redis.call('HGETALL', KEYS[2])
for i = 1, #dflat, 2 do known[dflat[i]] = tonumber(dflat[i + 1]) end

local upper, hist = {}, {}
for i = 1, #flat, 2 do
  local u = tonumber(flat[i + 1]) + (known[flat[i]] or t)
  upper[(i + 1) / 2] = u
  hist[u] = (hist[u] or 0) + 1
end
local values = {}
for u in pairs(hist) do values[#values + 1] = u end
table.sort(values)
local above = size
for _, u in ipairs(values) do
  if u <= t then above = above - hist[u] end
end
local threshold = t
for _, u in ipairs(values) do
  if above <= target then break end
  if u > t then
    threshold = u
    above = above - hist[u]
  end
end

local CHUNK = 2000
local gone, dead, dead_deltas, fresh = 0, {}, {}, {}
local function flush(command, key, args)
  if #args > 0 then redis.call(command, key, unpack(args)) end
  return {}
end
for i = 1, #flat, 2 do
  local field = flat[i]
  if upper[(i + 1) / 2] <= threshold then
    gone = gone + 1
    dead[#dead + 1] = field
    if known[field] ~= nil then dead_deltas[#dead_deltas + 1] = field end
  elseif known[field] == nil then
    fresh[#fresh + 1] = field
    fresh[#fresh + 1] = t
  end
  if #dead >= CHUNK then dead = flush('HDEL', KEYS[1], dead) end
  if #dead_deltas >= CHUNK then dead_deltas = flush('HDEL', KEYS[2], dead_deltas) end
  if #fresh >= 2 * CHUNK then fresh = flush('HSET', KEYS[2], fresh) end
end
flush('HDEL', KEYS[1], dead)
flush('HDEL', KEYS[2], dead_deltas)
flush('HSET', KEYS[2], fresh)
redis.call('HSET', KEYS[3], 'threshold', threshold)
redis.call('HINCRBY', KEYS[3], 'prunes', 1)
redis.call('HINCRBY', KEYS[3], 'pruned', gone)
return {gone, threshold, size - gone}
