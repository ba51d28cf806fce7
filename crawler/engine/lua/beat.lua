-- A live worker renews its registration, and with it the leases of every URL it holds, and
-- returns those of workers that stopped answering. ARGV: 3 worker, 4 lease (ms), 5 info.
-- Returns 'ok'; 'lost' (it had lapsed: the URLs it held went to others, and it is registered
-- anew, holding none); or 'over' (the crawl is finishing or done: it takes no more work).
local worker, lease = ARGV[3], tonumber(ARGV[4])
if not current() then
  return 'over'
end
local now = now_ms()
local status = redis.call('HGET', META, 'status')
local finishing = status == 'finishing' and redis.call('HGET', META, 'finisher') == worker
if status ~= 'running' and not finishing then
  return 'over'
end
local known = redis.call('ZSCORE', WORKERS, worker)
if known and tonumber(known) <= now then
  reclaim(now)  -- its own leases lapsed: they are someone else's to take now
  known = nil
end
redis.call('ZADD', WORKERS, now + lease, worker)
redis.call('HSET', G .. 'winfo', worker, ARGV[5])
reclaim(now)
return known and 'ok' or 'lost'
