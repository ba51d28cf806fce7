-- Who finishes the crawl: the first worker to find it done. ARGV: 3 worker, 4 max_pages.
-- Returns 1 if it is this worker's to finish (or it was already, or its finisher died).
local worker, max_pages = ARGV[3], tonumber(ARGV[4])
if not current() then
  return 0
end
local now = now_ms()
reclaim(now)
local status = redis.call('HGET', META, 'status')
if status == 'finishing' then
  local finisher = redis.call('HGET', META, 'finisher')
  if finisher ~= worker and num(redis.call('ZSCORE', WORKERS, finisher)) > now then
    return 0
  end
elseif status ~= 'running' or not done(max_pages) then
  return 0
end
redis.call('HSET', META, 'status', 'finishing', 'finisher', worker)
return 1
