
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st == 'pending' then return 0 end
if st == 'delivered' and tonumber(redis.call('HGET', KEYS[5], 'delivered') or '0') > 0 then
	redis.call('HINCRBY', KEYS[5], 'delivered', -1)
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
local due = ARGV[2]
local created = redis.call('HGET', KEYS[1], 'created')
if created and tonumber(created) and tonumber(created) < tonumber(due) then due = created end
redis.call('HSET', KEYS[1], 'state', 'pending', 'next', due)
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('ZADD', KEYS[3], due, ARGV[1])
return 1