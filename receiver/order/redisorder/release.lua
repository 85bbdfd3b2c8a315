
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HDEL', KEYS[1], 'c', 'ce')
return 1