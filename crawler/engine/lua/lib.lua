-- Shared by every script (prepended when loaded). ARGV[1]: the crawl's key prefix
-- "crawl:<id>:", ARGV[2]: its generation (one per crawl of the output folder). Data keys live
-- under "<prefix><generation>:", so a new crawl never reads an old one's keys.
-- Time is the Redis server's (TIME), so that workers on machines whose clocks differ agree.
local P = ARGV[1]
local GEN = ARGV[2]
local G = P .. GEN .. ':'
local META = P .. 'meta'
local HOSTS, COUNTS, LEASES, WORKERS = G .. 'hosts', G .. 'counts', G .. 'leases', G .. 'workers'
local SEEN, SKIPPED, RETRIES, RETRY_ITEMS = G .. 'seen', G .. 'skipped', G .. 'retries', G .. 'retry_items'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function num(value)
  return tonumber(value or '0') or 0
end

-- Is this still the crawl the caller works on (a new crawl has another generation)?
local function current()
  return redis.call('HGET', META, 'gen') == GEN
end

local function running()
  return current() and redis.call('HGET', META, 'status') == 'running'
end

local function queue_of(origin, kind)
  return G .. ((kind == 'page') and 'pq:' or 'rq:') .. origin
end

local function counter_of(kind)
  return (kind == 'page') and 'npage' or 'nreq'
end

-- A host with queued URLs is in HOSTS, scored by when to look at it again (its politeness
-- not_before at the earliest); one without is not.
local function look(origin, now, later)
  local waiting = redis.call('LLEN', G .. 'rq:' .. origin) + redis.call('LLEN', G .. 'pq:' .. origin)
  if waiting == 0 then
    redis.call('ZREM', HOSTS, origin)
    return
  end
  local not_before = num(redis.call('HGET', G .. 'h:' .. origin, 'nb'))
  redis.call('ZADD', HOSTS, math.max(not_before, now + (later or 0)), origin)
end

local function push(origin, item, kind, front)
  if front then
    redis.call('LPUSH', queue_of(origin, kind), item)
  else
    redis.call('RPUSH', queue_of(origin, kind), item)
  end
  redis.call('HINCRBY', COUNTS, counter_of(kind), 1)
end

-- A host seen for the first time: with robots on, its robots.txt is queued first and nothing
-- else of it goes until the answer is in (robots '0': pending; 'k': known).
local function new_host(origin, robots)
  if redis.call('HSETNX', G .. 'h:' .. origin, 'robots', robots == '1' and '0' or 'k') == 1 and robots == '1' then
    local url = origin .. '/robots.txt'
    if redis.call('SADD', SEEN, url) == 1 then
      push(origin, cjson.encode({url, 0, 'robots', cjson.null, 0, 0, false}), 'robots', true)
    end
  end
end

-- A lease ends: taken out of flight (its request slot too, if still held).
local function end_lease(url, lease)
  redis.call('HDEL', LEASES, url)
  redis.call('SREM', G .. 'wl:' .. lease[2], url)
  redis.call('HDEL', G .. 'slots:' .. lease[4], lease[3])
  local item = cjson.decode(lease[1])
  if item[3] == 'page' then
    redis.call('HINCRBY', COUNTS, 'pif', -1)
  end
  return item
end

-- Workers whose registration lapsed (killed, stopped, cut off): their leased URLs go back to
-- the front of their hosts' queues, their request slots are freed.
local function reclaim(now)
  local gone = redis.call('ZRANGEBYSCORE', WORKERS, '-inf', now, 'LIMIT', 0, 16)
  for _, worker in ipairs(gone) do
    local held = G .. 'wl:' .. worker
    for _, url in ipairs(redis.call('SMEMBERS', held)) do
      local raw = redis.call('HGET', LEASES, url)
      if raw then
        local lease = cjson.decode(raw)
        local item = end_lease(url, lease)
        push(lease[4], lease[1], item[3], true)
        look(lease[4], now)
      end
    end
    redis.call('DEL', held)
    redis.call('ZREM', WORKERS, worker)
    redis.call('HDEL', G .. 'winfo', worker)
  end
  return #gone
end

local function budget_left(max_pages)
  return max_pages == 0 or num(redis.call('HGET', COUNTS, 'saved_html')) + num(redis.call('HGET', COUNTS, 'pif')) < max_pages
end

-- Done: no URL queued (pages a used-up max_pages keeps out aside), none waiting for a retry,
-- no lease live.
local function done(max_pages)
  if redis.call('HLEN', LEASES) > 0 or redis.call('ZCARD', RETRIES) > 0 then
    return false
  end
  if num(redis.call('HGET', COUNTS, 'nreq')) > 0 then
    return false
  end
  return num(redis.call('HGET', COUNTS, 'npage')) == 0 or not budget_left(max_pages)
end
