
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
local n = 0
for _, id in ipairs(ids) do
	redis.call('ZREM', KEYS[1], id)
	local k = ARGV[1] .. id
	if redis.call('HGET', k, 'state') == 'pending' then
		redis.call('HSET', k, 'state', 'dead')
		redis.call('HINCRBY', k, 'lease', 1)
		redis.call('RPUSH', ARGV[2] .. id, ARGV[4])
		redis.call('LTRIM', ARGV[2] .. id, -50, -1)
		redis.call('ZADD', KEYS[2], ARGV[3], id)
		n = n + 1
	end
end
return {n, #ids}