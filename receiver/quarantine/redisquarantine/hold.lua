-- KEYS: items, held, hist, sizes, meta. ARGV: id, encoded item, size, max bytes.
-- Returns 1 when held, 0 when the quarantine is full (held requests alone would pass max).
local held = tonumber(redis.call('HGET', KEYS[5], 'held') or '0')
local hist = tonumber(redis.call('HGET', KEYS[5], 'hist') or '0')
local size, max = tonumber(ARGV[3]), tonumber(ARGV[4])
if held + size > max then return 0 end
while held + hist + size > max do
  local old = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #old == 0 then break end
  hist = hist - tonumber(redis.call('HGET', KEYS[4], old[1]) or '0')
  redis.call('ZREM', KEYS[3], old[1])
  redis.call('HDEL', KEYS[1], old[1])
  redis.call('HDEL', KEYS[4], old[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], size)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('HSET', KEYS[5], 'held', held + size, 'hist', hist)
return 1
