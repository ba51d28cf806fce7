-- Record the rule that kept each URL out (the first rule wins; an admitted URL is in).
-- ARGV: pairs of url, rule from 3 on.
if not current() then
  return 0
end
for i = 3, #ARGV, 2 do
  if redis.call('SISMEMBER', SEEN, ARGV[i]) == 0 then
    redis.call('HSETNX', SKIPPED, ARGV[i], ARGV[i + 1])
  end
end
return 1
