
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'ev', ARGV[2], 'type', ARGV[3], 'body', ARGV[4], 'hdr', ARGV[5],
	'created', ARGV[6], 'state', 'pending', 'n', 0, 'next', ARGV[7], 'lease', 0)
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[9])
if ARGV[8] == '1' then
	-- the latest event of its type, for Resend, from the arguments already here (latest.go)
	local v = {'\1'}
	for _, i in ipairs({2, 3, 4, 5, 6, 10}) do
		v[#v + 1], v[#v + 2], v[#v + 3] = #ARGV[i], ':', ARGV[i]
	end
	redis.call('HSET', KEYS[4], ARGV[3], table.concat(v))
end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'terr', ARGV[10]) end
return 1