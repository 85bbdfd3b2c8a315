local limit, share = tonumber(ARGV[1]), tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV do
	redis.call('LPUSH', KEYS[1], ARGV[i])
	added = added + #ARGV[i]
end
local b = redis.call('INCRBY', KEYS[2], added)
local n = redis.call('LLEN', KEYS[1])
while n > 1 and (n > limit or b > share) do
	local old = redis.call('RPOP', KEYS[1])
	b = redis.call('DECRBY', KEYS[2], #old)
	n = n - 1
end
if b < 0 or n <= 1 then
	redis.call('SET', KEYS[2], #ARGV[#ARGV])
end
return n
