-- A worker joins the crawl of an output folder: the running one, or a new one if none runs
-- (none yet, or the last completed). The generation ARGV[2] is ignored: this script chooses.
-- ARGV: 3 worker, 4 lease (ms), 5 worker info, 6 started_at, 7 snapshot, 8 first_crawl, 9 config.
-- Returns {'new'|'joined', generation, started_at, snapshot, first_crawl, other live workers}
-- or {'finishing', the worker finishing it}.
local worker, lease = ARGV[3], tonumber(ARGV[4])
local now = now_ms()
local meta = redis.call('HMGET', META, 'status', 'gen', 'finisher')
local status, gen, finisher = meta[1], meta[2], meta[3]
local function workers_of(generation)
  return P .. generation .. ':workers'
end
if status == 'finishing' then
  local alive = num(redis.call('ZSCORE', workers_of(gen), finisher)) > now
  if alive then
    return {'finishing', finisher}
  end
  status = 'running'  -- its finisher is gone: finishing falls to whoever comes next
  redis.call('HSET', META, 'status', 'running')
  redis.call('HDEL', META, 'finisher')
end
local how = 'joined'
if status ~= 'running' then
  how = 'new'
  gen = tostring(redis.call('HINCRBY', META, 'gen', 1))
  redis.call('HSET', META, 'status', 'running', 'started_at', ARGV[6], 'snapshot', ARGV[7],
             'first_crawl', ARGV[8], 'config', ARGV[9])
end
local workers = workers_of(gen)
local others = redis.call('ZCOUNT', workers, '(' .. now, '+inf')
redis.call('ZADD', workers, now + lease, worker)
redis.call('HSET', P .. gen .. ':winfo', worker, ARGV[5])
local started = redis.call('HMGET', META, 'started_at', 'snapshot', 'first_crawl')
return {how, gen, started[1] or '', started[2] or '', started[3] or '', others}
