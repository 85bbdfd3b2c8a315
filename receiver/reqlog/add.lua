
redis.call('LPUSH', KEYS[1], ARGV[1])
local b = redis.call('INCRBY', KEYS[2], #ARGV[1])
local n = redis.call('LLEN', KEYS[1])
local limit, share = tonumber(ARGV[2]), tonumber(ARGV[3])
while n > 1 and (n > limit or b > share) do
	local old = redis.call('RPOP', KEYS[1])
	b = redis.call('DECRBY', KEYS[2], #old)
	n = n - 1
end
if b < 0 or n <= 1 then
	redis.call('SET', KEYS[2], #ARGV[1])
end
return n
