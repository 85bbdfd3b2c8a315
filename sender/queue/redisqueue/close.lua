-- KEYS: ep. ARGV: closed breaker JSON. Returns 1 if the breaker was open.
local was = redis.call('HGET', KEYS[1], 'b_state')
redis.call('HSET', KEYS[1], 'b_state', 'closed', 'b_json', ARGV[1])
redis.call('HDEL', KEYS[1], 'b_until', 'b_manual', 'b_probe')
if was == 'open' then return 1 end
return 0
