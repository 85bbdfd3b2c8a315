
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], -50, -1)
if ARGV[8] ~= '0' then redis.call('HINCRBY', KEYS[1], 'n', 1) end
if ARGV[9] == '1' then
	redis.call('HSET', KEYS[1], 'body', ARGV[10], 'hdr', ARGV[11])
	redis.call('HDEL', KEYS[1], 'terr')
end
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[5], 'last', ARGV[5])
if ARGV[3] == 'done' then
	redis.call('ZREM', KEYS[3], ARGV[1])
	redis.call('HSET', KEYS[1], 'state', 'delivered')
	redis.call('PEXPIRE', KEYS[1], ARGV[7])
	redis.call('PEXPIRE', KEYS[2], ARGV[7])
	redis.call('HINCRBY', KEYS[5], 'delivered', 1)
elseif ARGV[3] == 'retry' then
	redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
	redis.call('HSET', KEYS[1], 'next', ARGV[4])
else
	redis.call('ZREM', KEYS[3], ARGV[1])
	redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
	redis.call('HSET', KEYS[1], 'state', 'dead')
end
return 1