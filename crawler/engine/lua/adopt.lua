-- A redirect target claimed and fetched in place, whose fetch failed, becomes an item of its
-- own, leased to the worker that holds the redirecting URL. ARGV: 3 worker, 4 url, 5 origin,
-- 6 item, 7 kind. Returns the lease token.
local worker, url, origin, item, kind = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if not current() then
  return ''
end
redis.call('SADD', SEEN, url)
redis.call('HDEL', SKIPPED, url)
local token = tostring(redis.call('INCR', G .. 'tokens'))
redis.call('HSET', LEASES, url, cjson.encode({item, worker, token, origin}))
redis.call('SADD', G .. 'wl:' .. worker, url)
if kind == 'page' then
  redis.call('HINCRBY', COUNTS, 'pif', 1)
end
return token
