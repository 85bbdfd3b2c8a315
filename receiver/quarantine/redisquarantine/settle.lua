-- KEYS: items, held, hist, sizes, lease, meta. ARGV: id, token, state, encoded item, size, now ms.
-- Returns 1 when settled, 0 when the item is not held or another's lease runs.
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local l = redis.call('HGET', KEYS[5], ARGV[1])
if l then
  local u, tok = string.match(l, '^(%d+)|(.*)$')
  if u and tonumber(u) > tonumber(ARGV[6]) and tok ~= ARGV[2] then return 0 end
end
local old = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
local size = tonumber(ARGV[5])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[4], ARGV[1], size)
if ARGV[3] == 'held' then
  redis.call('HINCRBY', KEYS[6], 'held', size - old)
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('HINCRBY', KEYS[6], 'held', -old)
redis.call('HINCRBY', KEYS[6], 'hist', size)
return 1
