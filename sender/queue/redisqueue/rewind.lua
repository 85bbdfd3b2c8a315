-- KEYS: due. ARGV: now, keep, dprefix, offset, limit.
-- Makes pending deliveries that are not leased and not keep due at their creation (or now,
-- if created later), so the probe and the drain take the oldest first (a leased
-- delivery's score is its lease's end, not its 'next'; one whose lease has lapsed moves). A moved delivery only moves
-- earlier, so the caller pages on by what was seen. Returns {rewound, seen}.
local rows = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[4]) + tonumber(ARGV[5]) - 1, 'WITHSCORES')
local n, seen = 0, 0
local now = tonumber(ARGV[1])
for i = 1, #rows, 2 do
	local id, score = rows[i], tonumber(rows[i + 1])
	seen = seen + 1
	local k = ARGV[3] .. id
	local v = redis.call('HMGET', k, 'created', 'next', 'state')
	if id ~= ARGV[2] and v[1] and v[3] == 'pending' and v[2] and (math.abs(tonumber(v[2]) - score) < 1 or score <= now) then
		local c = tonumber(v[1])
		if c > now then c = now end
		if math.abs(score - c) >= 1 then
			redis.call('ZADD', KEYS[1], c, id)
			redis.call('HSET', k, 'next', c)
			n = n + 1
		end
	end
end
return {n, seen}
