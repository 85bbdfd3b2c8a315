
if redis.call('HGET', KEYS[2], 'lease') == ARGV[2] then
	redis.call('HINCRBY', KEYS[2], 'lease', 1)
	redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
	return 1
end
return 0