-- Finishes the deliveries of one endpoint (their keys share its hash tag) in one call.
-- KEYS: due, dead, ep, then d and a of each delivery.
-- ARGV: now, then ten values per delivery: id, lease, outcome, next, attemptJSON,
-- retentionMS, counted ('1' or '0'), reshaped ('1' or '0'), its body, its header JSON.
local due, dead, ep, now = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local finished = 0
for i = 0, (#KEYS - 3) / 2 - 1 do
	local d, a, o = KEYS[4 + 2 * i], KEYS[5 + 2 * i], 2 + 10 * i
	local id, outcome, att, keep = ARGV[o], ARGV[o + 2], ARGV[o + 4], ARGV[o + 5]
	if redis.call('HGET', d, 'lease') == ARGV[o + 1] and redis.call('HGET', d, 'state') == 'pending' then
		redis.call('RPUSH', a, att)
		redis.call('LTRIM', a, -50, -1)
		if ARGV[o + 6] ~= '0' then redis.call('HINCRBY', d, 'n', 1) end
		if ARGV[o + 7] == '1' then
			redis.call('HSET', d, 'body', ARGV[o + 8], 'hdr', ARGV[o + 9])
			redis.call('HDEL', d, 'terr')
		end
		redis.call('HINCRBY', d, 'lease', 1)
		redis.call('HSET', ep, 'last', att)
		if outcome == 'done' then
			redis.call('ZREM', due, id)
			redis.call('HSET', d, 'state', 'delivered')
			redis.call('PEXPIRE', d, keep)
			redis.call('PEXPIRE', a, keep)
			redis.call('HINCRBY', ep, 'delivered', 1)
		elseif outcome == 'retry' then
			redis.call('ZADD', due, ARGV[o + 3], id)
			redis.call('HSET', d, 'next', ARGV[o + 3])
		else
			redis.call('ZREM', due, id)
			redis.call('ZADD', dead, now, id)
			redis.call('HSET', d, 'state', 'dead')
		end
		finished = finished + 1
	end
end
return finished
