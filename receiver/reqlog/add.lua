local limit, share = tonumber(ARGV[1]), tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV do added = added + #ARGV[i] end
-- One push for the batch (each record goes to the head, in order), one pop for the records
-- over the count limit, then one at a time while the list is over its byte share.
local n = redis.call('LPUSH', KEYS[1], unpack(ARGV, 3))
local b = redis.call('INCRBY', KEYS[2], added)
if n > limit and n > 1 then
	local old = redis.call('RPOP', KEYS[1], math.min(n - limit, n - 1))
	local gone = 0
	for _, o in ipairs(old) do gone = gone + #o end
	n = n - #old
	b = redis.call('DECRBY', KEYS[2], gone)
end
while n > 1 and b > share do
	local old = redis.call('RPOP', KEYS[1])
	b = redis.call('DECRBY', KEYS[2], #old)
	n = n - 1
end
if b < 0 or n <= 1 then
	redis.call('SET', KEYS[2], #ARGV[#ARGV])
end
return n
