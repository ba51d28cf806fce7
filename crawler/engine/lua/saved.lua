-- A saved file's entry (JSON, "path" resolved through the moves journaled before it), and the
-- index of URLs by path. ARGV: 3 url, 4 entry, 5 path.
local url, entry, path = ARGV[3], ARGV[4], ARGV[5]
if not current() then
  return ''
end
local moves = G .. 'moves'
for _ = 1, 100 do
  local moved = redis.call('HGET', moves, path)
  if not moved then
    break
  end
  path = moved
end
local old = redis.call('HGET', G .. 'saved', url)
if old then
  redis.call('SREM', G .. 'at:' .. cjson.decode(old).path, url)
end
local record = cjson.decode(entry)
record.path = path
redis.call('HSET', G .. 'saved', url, cjson.encode(record))
redis.call('SADD', G .. 'at:' .. path, url)
return path
