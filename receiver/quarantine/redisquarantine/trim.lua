-- KEYS: items, held, hist, sizes, lease, meta. ARGV: cut id (items below it go), limit.
-- Returns how many held and history items went.
local out = {0, 0}
local zs = {KEYS[2], KEYS[3]}
local fields = {'held', 'hist'}
for i = 1, 2 do
  local ids = redis.call('ZRANGEBYLEX', zs[i], '-', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
  local freed = 0
  for _, id in ipairs(ids) do
    freed = freed + tonumber(redis.call('HGET', KEYS[4], id) or '0')
    redis.call('ZREM', zs[i], id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
  end
  if freed ~= 0 then redis.call('HINCRBY', KEYS[6], fields[i], -freed) end
  out[i] = #ids
end
return out
