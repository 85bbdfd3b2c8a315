-- Finishes the deliveries of one endpoint (their keys share its hash tag) in one call.
-- KEYS: due, dead, ep, then d and a of each delivery.
-- ARGV: now, then ten values per delivery: id, lease, outcome, next, attemptJSON,
-- retentionMS, counted ('1' or '0'), reshaped ('1' or '0'), its body, its header JSON.
-- A delivery's hash is read once and written once; the due set, the dead set and the
-- endpoint's hash are changed once for all of them.
local due, dead, ep, now = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local finished, delivered, last = 0, 0, nil
local gone, died = {}, {}
for i = 0, (#KEYS - 3) / 2 - 1 do
	local d, a, o = KEYS[4 + 2 * i], KEYS[5 + 2 * i], 2 + 10 * i
	local id, outcome, att, keep = ARGV[o], ARGV[o + 2], ARGV[o + 4], ARGV[o + 5]
	local v = redis.call('HMGET', d, 'lease', 'state', 'n')
	if v[1] == ARGV[o + 1] and v[2] == 'pending' then
		if redis.call('RPUSH', a, att) > 50 then redis.call('LTRIM', a, -50, -1) end
		local f = {'lease', tostring(tonumber(v[1]) + 1)}
		if ARGV[o + 6] ~= '0' then
			f[#f + 1], f[#f + 2] = 'n', tostring((tonumber(v[3]) or 0) + 1)
		end
		if ARGV[o + 7] == '1' then
			f[#f + 1], f[#f + 2], f[#f + 3], f[#f + 4] = 'body', ARGV[o + 8], 'hdr', ARGV[o + 9]
			redis.call('HDEL', d, 'terr')
		end
		last = att
		if outcome == 'done' then
			gone[#gone + 1] = id
			f[#f + 1], f[#f + 2] = 'state', 'delivered'
			redis.call('HSET', d, unpack(f))
			redis.call('PEXPIRE', d, keep)
			redis.call('PEXPIRE', a, keep)
			delivered = delivered + 1
		elseif outcome == 'retry' then
			redis.call('ZADD', due, ARGV[o + 3], id)
			f[#f + 1], f[#f + 2] = 'next', ARGV[o + 3]
			redis.call('HSET', d, unpack(f))
		else
			gone[#gone + 1] = id
			died[#died + 1], died[#died + 2] = now, id
			f[#f + 1], f[#f + 2] = 'state', 'dead'
			redis.call('HSET', d, unpack(f))
		end
		finished = finished + 1
	end
end
if #gone > 0 then redis.call('ZREM', due, unpack(gone)) end
if #died > 0 then redis.call('ZADD', dead, unpack(died)) end
if last then redis.call('HSET', ep, 'last', last) end
if delivered > 0 then redis.call('HINCRBY', ep, 'delivered', delivered) end
return finished
