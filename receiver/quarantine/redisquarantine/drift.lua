-- KEYS: drift. ARGV: max groups, then per group: key, count, first ms, last ms, example,
-- other key. A group the report does not hold yet, once it holds max, counts in its
-- kind's other group. Fields: n (groups held), c:<key> count, f:<key> first ms,
-- l:<key> last ms, x:<key> example.
local max = tonumber(ARGV[1])
local i = 2
while i + 5 <= #ARGV do
  local key, c, f, l, ex, other = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), tonumber(ARGV[i+3]), ARGV[i+4], ARGV[i+5]
  i = i + 6
  if redis.call('HEXISTS', KEYS[1], 'c:' .. key) == 0 then
    if key ~= other and tonumber(redis.call('HGET', KEYS[1], 'n') or '0') >= max then
      key, ex = other, ''
    end
    if redis.call('HEXISTS', KEYS[1], 'c:' .. key) == 0 then
      redis.call('HINCRBY', KEYS[1], 'n', 1)
    end
  end
  redis.call('HINCRBY', KEYS[1], 'c:' .. key, c)
  local cf = tonumber(redis.call('HGET', KEYS[1], 'f:' .. key) or '0')
  if cf == 0 or f < cf then redis.call('HSET', KEYS[1], 'f:' .. key, f) end
  local cl = tonumber(redis.call('HGET', KEYS[1], 'l:' .. key) or '0')
  if l > cl then redis.call('HSET', KEYS[1], 'l:' .. key, l) end
  if ex ~= '' then redis.call('HSETNX', KEYS[1], 'x:' .. key, ex) end
end
return 1
