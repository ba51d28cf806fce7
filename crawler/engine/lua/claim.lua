-- Mark a URL seen without queueing it (a redirect target fetched in place). ARGV: 3 url.
-- Returns 1 if it is new.
if not current() or redis.call('SADD', SEEN, ARGV[3]) == 0 then
  return 0
end
redis.call('HDEL', SKIPPED, ARGV[3])
return 1
