
if redis.call('HGET', KEYS[2], 'disabled') == '1' then return {} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
	local k = ARGV[4] .. id
	if redis.call('EXISTS', k) == 0 then
		redis.call('ZREM', KEYS[1], id)
	else
		redis.call('ZADD', KEYS[1], ARGV[2], id)
		local l = redis.call('HINCRBY', k, 'lease', 1)
		local v = redis.call('HMGET', k, 'ev', 'type', 'body', 'hdr', 'n', 'created', 'next', 'terr')
		out[#out+1] = {id, tostring(l), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] or ''}
	end
end
return out