-- A worker leaves: what it still holds goes back to the queue, its counters are added to
-- the crawl's. ARGV: 3 worker, then pairs of counter name, value.
local worker = ARGV[3]
if not current() then
  return 0
end
redis.call('ZADD', WORKERS, 0, worker)  -- lapsed: reclaim() returns its leases
reclaim(now_ms())
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', G .. 'totals', ARGV[i], ARGV[i + 1])
end
return 1
