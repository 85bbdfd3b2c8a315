
if redis.call('HGET', KEYS[2], 'lease') == ARGV[2] then
	return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
end
return 0