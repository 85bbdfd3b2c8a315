-- KEYS: items, held, lease. ARGV: id, token, now ms, lease end ms.
-- Returns the encoded item when leased, nil when it is not held or another lease runs.
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return false end
local l = redis.call('HGET', KEYS[3], ARGV[1])
if l then
  local u = tonumber(string.match(l, '^(%d+)'))
  if u and u > tonumber(ARGV[3]) then return false end
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4] .. '|' .. ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
