-- Admit URLs not seen before: each one test-and-set on the seen-set and queued for its host,
-- in one step, so that a URL is never admitted twice nor lost between "seen" and "queued".
-- ARGV: 3 robots ('1': obey robots.txt), then groups of 5: url, origin, kind, item,
-- checked ('1': the caller asked the host's known robots.txt rules about it).
-- Returns, per URL: 1 admitted, 0 seen before, 2 its host's robots.txt is known now: ask it
-- and try again.
local robots = ARGV[3]
local answers = {}
if not running() then  -- finishing: a worker back from a stop adds nothing (its page is another's)
  for i = 4, #ARGV, 5 do
    answers[#answers + 1] = 0
  end
  return answers
end
local now = now_ms()
for i = 4, #ARGV, 5 do
  local url, origin, kind, item, checked = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if redis.call('SISMEMBER', SEEN, url) == 1 then
    answers[#answers + 1] = 0
  elseif checked ~= '1' and redis.call('HGET', G .. 'h:' .. origin, 'robots') == 'k' then
    answers[#answers + 1] = 2
  else
    redis.call('SADD', SEEN, url)
    redis.call('HDEL', SKIPPED, url)
    new_host(origin, robots)
    push(origin, item, kind, false)
    look(origin, now)
    answers[#answers + 1] = 1
  end
end
return answers
