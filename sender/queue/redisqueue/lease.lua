-- KEYS: due, ep. ARGV: now, until, max, dprefix
-- Returns {flag, until, rows}: flag 'ok', 'probe' (rows has at most the probe) or 'open'
-- (no lease: the breaker holds deliveries back until `until`, '' while held by hand).
-- Two commands per delivery (its fields, its lease counter); the due set is changed once
-- for all of them.
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
local out, gone, leased = {}, {}, {}
for _, id in ipairs(ids) do
	local k = ARGV[4] .. id
	local v = redis.call('HMGET', k, 'ev', 'type', 'body', 'hdr', 'n', 'created', 'next', 'terr', 'lease')
	if not v[1] and not v[9] then
		gone[#gone+1] = id -- the delivery is gone (its retention ran out): drop it from due
	else
		local l = redis.call('HINCRBY', k, 'lease', 1)
		leased[#leased+1] = ARGV[2]
		leased[#leased+1] = id
		out[#out+1] = {id, tostring(l), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] or ''}
	end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
if #leased > 0 then redis.call('ZADD', KEYS[1], unpack(leased)) end
if flag == 'probe' and #out > 0 then redis.call('HSET', KEYS[2], 'b_probe', ARGV[2]) end
return {flag, '', out}
