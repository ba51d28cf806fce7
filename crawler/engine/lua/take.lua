-- The next URL some host may send now, leased to a worker.
-- ARGV: 3 worker, 4 max_pages (0: none), 5 per_host, 6 per_host_http1, 7 delay (ms).
-- Returns {'item', item, token} | {'wait', ms (-1: only in-flight work can change things)}
-- | {'done'} | {'over'} (the crawl is finishing or another crawl began) | {'lost'} (the
-- worker's registration lapsed: it must register again).
local worker, max_pages = ARGV[3], tonumber(ARGV[4])
local per_host, per_host_http1, delay = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if not running() then
  return {'over'}
end
if not redis.call('ZSCORE', WORKERS, worker) then
  return {'lost'}
end
local now = now_ms()
reclaim(now)
for _, url in ipairs(redis.call('ZRANGEBYSCORE', RETRIES, '-inf', now, 'LIMIT', 0, 100)) do
  local retry = cjson.decode(redis.call('HGET', RETRY_ITEMS, url))
  redis.call('ZREM', RETRIES, url)
  redis.call('HDEL', RETRY_ITEMS, url)
  push(retry[1], retry[2], retry[3], true)  -- a retry jumps the queue: it may hold up a page
  look(retry[1], now)
end

-- Over HTTP/2 a host takes per_host requests at once; otherwise (or not known yet) each
-- worker sends it no more than its connections can carry, and all together per_host at most.
local function full(slots, mux)
  local taken = redis.call('HVALS', slots)
  if #taken >= per_host then
    return true
  end
  if mux == '1' then
    return false
  end
  local mine = 0
  for _, holder in ipairs(taken) do
    if holder == worker then
      mine = mine + 1
    end
  end
  return mine >= per_host_http1
end

local function next_of(origin, robots, pages_ok)
  local requisites = G .. 'rq:' .. origin
  if robots ~= 'k' then  -- robots.txt unanswered: only its own request may go
    local head = redis.call('LINDEX', requisites, 0)
    if head and cjson.decode(head)[3] == 'robots' then
      return redis.call('LPOP', requisites)
    end
    return nil
  end
  local item = redis.call('LPOP', requisites)
  if not item and pages_ok then
    item = redis.call('LPOP', G .. 'pq:' .. origin)
  end
  return item
end

local pages_ok = budget_left(max_pages)
for _, origin in ipairs(redis.call('ZRANGEBYSCORE', HOSTS, '-inf', now, 'LIMIT', 0, 64)) do
  local host = G .. 'h:' .. origin
  local slots = G .. 'slots:' .. origin
  local state = redis.call('HMGET', host, 'robots', 'mux', 'cd')
  if full(slots, state[2]) then
    look(origin, now, 20)  -- look again when a request may have ended
  else
    local raw = next_of(origin, state[1], pages_ok)
    if raw then
      local item = cjson.decode(raw)
      local token = tostring(redis.call('INCR', G .. 'tokens'))
      redis.call('HSET', slots, token, worker)
      redis.call('HSET', host, 'nb', now + math.max(delay, num(state[3])), 'ls', now)
      redis.call('HSET', LEASES, item[1], cjson.encode({raw, worker, token, origin}))
      redis.call('SADD', G .. 'wl:' .. worker, item[1])
      redis.call('HINCRBY', COUNTS, counter_of(item[3]), -1)
      if item[3] == 'page' then
        redis.call('HINCRBY', COUNTS, 'pif', 1)
      end
      look(origin, now)
      return {'item', raw, token}
    end
    look(origin, now, 250)  -- robots.txt in flight, or only pages that max_pages holds back
  end
end

if done(max_pages) then
  return {'done'}
end
local wake = -1
local host = redis.call('ZRANGE', HOSTS, 0, 0, 'WITHSCORES')
local retry = redis.call('ZRANGE', RETRIES, 0, 0, 'WITHSCORES')
for _, first in ipairs({host, retry}) do
  if first[2] then
    local wait = math.max(0, tonumber(first[2]) - now)
    wake = (wake < 0) and wait or math.min(wake, wait)
  end
end
return {'wait', wake}
