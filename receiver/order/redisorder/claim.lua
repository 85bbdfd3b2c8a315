
local h = redis.call('HMGET', KEYS[1], 'v', 'c', 'ce')
if h[2] and tonumber(h[3]) > tonumber(ARGV[3]) then return 2 end
if h[1] and h[1] > ARGV[1] then return 1 end
redis.call('HSET', KEYS[1], 'c', ARGV[2], 'ce', ARGV[4])
if not h[1] then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return 0