
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[2] then return 0 end
local v = redis.call('HGET', KEYS[1], 'v')
if not v or ARGV[1] > v then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end
redis.call('HDEL', KEYS[1], 'c', 'ce')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1