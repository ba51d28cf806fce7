-- Queued URLs a host's robots.txt keeps out, taken out of its queues and skipped.
-- ARGV: 3 origin, 4 rule, then the queue entries (as LRANGE read them).
local origin, rule = ARGV[3], ARGV[4]
if not current() then
  return {}
end
local dropped = {}
for i = 5, #ARGV do
  local item = cjson.decode(ARGV[i])
  if redis.call('LREM', queue_of(origin, item[3]), 1, ARGV[i]) == 1 then
    redis.call('HINCRBY', COUNTS, counter_of(item[3]), -1)
    redis.call('HSET', SKIPPED, item[1], rule)
    dropped[#dropped + 1] = item[1]
  end
end
look(origin, now_ms())
return dropped
