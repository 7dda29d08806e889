-- Compact customers' event logs: the events that occurred before ARGV[1] (a UTC midnight the
-- evaluator's clock has passed) are folded into the customer's log base, the twin of
-- state.customer.event_log.compact. KEYS come in pairs per customer: the state hash and the event log
-- (zset by occurred_at_ms), both under the customer's hash tag. When the log ends up empty the base
-- is written *bare* (the bound alone): it is then the live state itself, which the state hash holds
-- already (rfm_fold.lua writes it out before the next event after the bound). Returns how many events
-- were folded.
local DAY_MS = 86400000
local before = tonumber(ARGV[1])
local folded = 0

for k = 1, #KEYS, 2 do
  local state, log = KEYS[k], KEYS[k + 1]
  rename_earlier_fields(state)
  local base = redis.call('HGET', state, 'l')
  local b = {}
  if base and not string.find(base, ',', 1, true) then
    if tonumber(base) < before then redis.call('HSET', state, 'l', string.format('%d', before)) end
  elseif base then
    for part in string.gmatch(base .. ',', '([^,]*),') do b[#b + 1] = part end
  else
    b = {'0', '0', '0', '0', '', '', '0'}
  end
  if #b > 0 and tonumber(b[1]) < before then
    local head = redis.call('ZRANGEBYSCORE', log, '-inf', '(' .. before, 'WITHSCORES')
    if base or #head > 0 then
      local freq, cents, refunds, days = tonumber(b[2]), tonumber(b[3]), tonumber(b[4]), tonumber(b[7])
      local first, last = tonumber(b[5]), tonumber(b[6])
      local seen = {}  -- the head's days all follow the old base's days (it ends at a midnight)
      for i = 1, #head, 2 do
        local member, at = head[i], tonumber(head[i + 1])
        local amount = tonumber(string.match(member, '^.(-?%d+):'))
        cents = cents + amount
        if string.sub(member, 1, 1) == 'r' then
          refunds = refunds + 1
        else
          freq = freq + 1
          if not first or at < first then first = at end
          if not last or at > last then last = at end
          local day = math.floor(at / DAY_MS)
          if not seen[day] then seen[day] = true; days = days + 1 end
        end
      end
      local function text(v) if v then return string.format('%d', v) end return '' end
      redis.call('ZREMRANGEBYSCORE', log, '-inf', '(' .. before)
      if redis.call('ZCARD', log) == 0 then
        redis.call('HSET', state, 'l', text(before))
      else
        redis.call('HSET', state, 'l', table.concat({text(before), text(freq), text(cents), text(refunds),
                                                            text(first), text(last), text(days)}, ','))
      end
      folded = folded + #head / 2
    end
  end
end
return folded
