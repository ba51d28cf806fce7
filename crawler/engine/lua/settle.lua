-- A leased URL leaves flight: 'done' (ARGV 6: '1' if it saved an HTML page), 'retry' (ARGV
-- 6: delay in ms, ARGV 7: the item with its attempt counted) or 'back' (unfetched: the crawl
-- stopped). Only the lease's holder may: a token that is not the lease's changes nothing.
-- ARGV: 3 url, 4 token, 5 how. Returns 1 if the lease was the caller's.
local url, token, how = ARGV[3], ARGV[4], ARGV[5]
if not current() then
  return 0
end
local raw = redis.call('HGET', LEASES, url)
if not raw then
  return 0
end
local lease = cjson.decode(raw)
if lease[3] ~= token then
  return 0
end
local item = end_lease(url, lease)
local origin = lease[4]
local now = now_ms()
if how == 'done' then
  if ARGV[6] == '1' then
    redis.call('HINCRBY', COUNTS, 'saved_html', 1)
  end
elseif how == 'retry' then
  redis.call('ZADD', RETRIES, now + tonumber(ARGV[6]), url)
  redis.call('HSET', RETRY_ITEMS, url, cjson.encode({origin, ARGV[7], item[3]}))
else
  push(origin, lease[1], item[3], true)
end
look(origin, now)
return 1
