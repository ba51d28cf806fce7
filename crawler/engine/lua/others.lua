-- How many workers other than ARGV[3] are still registered and live.
if not current() then
  return 0
end
local now = now_ms()
reclaim(now)
local live = redis.call('ZCOUNT', WORKERS, '(' .. now, '+inf')
return live - ((num(redis.call('ZSCORE', WORKERS, ARGV[3])) > now) and 1 or 0)
