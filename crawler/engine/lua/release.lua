-- A request is over: its host may send the next one. ARGV: 3 origin, 4 token, 5 pause (ms:
-- the host asked us to wait, Retry-After).
local origin, token, pause = ARGV[3], ARGV[4], tonumber(ARGV[5])
if not current() then
  return 0
end
local now = now_ms()
local removed = redis.call('HDEL', G .. 'slots:' .. origin, token)
if pause > 0 then
  local host = G .. 'h:' .. origin
  redis.call('HSET', host, 'nb', math.max(num(redis.call('HGET', host, 'nb')), now + pause))
end
look(origin, now)
return removed
