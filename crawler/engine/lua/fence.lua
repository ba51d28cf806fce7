-- Fencing, checked just before a worker renames a file into the mirror: may it still write?
-- With a URL: its lease must be the caller's (ARGV 3 url, 4 token) -- a worker that was
-- stopped past its lease must not overwrite what another wrote for it since. Without (a page's
-- links fixed): the worker must still be one of the crawl's (ARGV 5 worker).
if not current() then
  return 0
end
if ARGV[3] ~= '' then
  local raw = redis.call('HGET', LEASES, ARGV[3])
  return (raw and cjson.decode(raw)[3] == ARGV[4]) and 1 or 0
end
local status = redis.call('HGET', META, 'status')
if status == 'finishing' then
  return redis.call('HGET', META, 'finisher') == ARGV[5] and 1 or 0
end
return (status == 'running' and num(redis.call('ZSCORE', WORKERS, ARGV[5])) > now_ms()) and 1 or 0
