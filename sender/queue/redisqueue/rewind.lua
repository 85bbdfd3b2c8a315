-- KEYS: due. ARGV: now, keep, dprefix, offset, limit.
-- Makes pending deliveries that are not due yet and not leased due at their creation
-- (a leased delivery's score is its lease's end, not its 'next'). Returns {rewound, seen}.
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', tonumber(ARGV[4]), tonumber(ARGV[5]))
local n, seen = 0, 0
for i = 1, #rows, 2 do
	local id, score = rows[i], tonumber(rows[i + 1])
	seen = seen + 1
	local k = ARGV[3] .. id
	local v = redis.call('HMGET', k, 'created', 'next', 'state')
	if id ~= ARGV[2] and v[1] and v[3] == 'pending' and v[2] and math.abs(tonumber(v[2]) - score) < 1 then
		local c = v[1]
		if tonumber(c) > tonumber(ARGV[1]) then c = ARGV[1] end
		redis.call('ZADD', KEYS[1], c, id)
		redis.call('HSET', k, 'next', c)
		n = n + 1
	end
end
return {n, seen}
