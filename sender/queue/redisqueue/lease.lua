-- KEYS: due, ep. ARGV: now, until, max, dprefix
-- Returns {flag, until, rows}: flag 'ok', 'probe' (rows has at most the probe) or 'open'
-- (no lease: the breaker holds deliveries back until `until`, '' while held by hand).
local g = redis.call('HMGET', KEYS[2], 'disabled', 'b_state', 'b_until', 'b_manual', 'b_probe')
if g[1] == '1' then return {'ok', '', {}} end
local max = tonumber(ARGV[3])
local flag = 'ok'
if g[2] == 'open' then
	if g[4] == '1' then return {'open', '', {}} end
	if tonumber(g[3]) > tonumber(ARGV[1]) then return {'open', g[3], {}} end
	if g[5] and tonumber(g[5]) > tonumber(ARGV[1]) then return {'open', g[5], {}} end
	max, flag = 1, 'probe'
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, max)
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
if flag == 'probe' and #out > 0 then redis.call('HSET', KEYS[2], 'b_probe', ARGV[2]) end
return {flag, '', out}
