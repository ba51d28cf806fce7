-- A saved file was renamed (a folder needed its name): every URL saved as it follows.
-- ARGV: 3 old path, 4 new path.
local old, new = ARGV[3], ARGV[4]
if not current() then
  return 0
end
redis.call('HSET', G .. 'moves', old, new)
for _, url in ipairs(redis.call('SMEMBERS', G .. 'at:' .. old)) do
  local record = cjson.decode(redis.call('HGET', G .. 'saved', url))
  record.path = new
  redis.call('HSET', G .. 'saved', url, cjson.encode(record))
  redis.call('SADD', G .. 'at:' .. new, url)
end
redis.call('DEL', G .. 'at:' .. old)
return 1
