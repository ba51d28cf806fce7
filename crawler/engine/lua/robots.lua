-- A host's robots.txt answered: its rules (as text, for every worker to read) apply from now
-- on, and its Crawl-delay counts from the robots.txt request itself.
-- ARGV: 3 origin, 4 rules, 5 crawl delay (ms), 6 delay (ms).
local origin, rules, crawl_delay, delay = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
if not current() then
  return 0
end
local host = G .. 'h:' .. origin
redis.call('HSET', G .. 'robots', origin, rules)
local last_start = num(redis.call('HGET', host, 'ls'))
local not_before = math.max(num(redis.call('HGET', host, 'nb')), last_start + math.max(delay, crawl_delay))
redis.call('HSET', host, 'robots', 'k', 'cd', crawl_delay, 'nb', not_before)
look(origin, now_ms())
return 1
