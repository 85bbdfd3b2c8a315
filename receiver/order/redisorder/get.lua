
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}