/**
 * Lua scripts of the Redis message log and failures list (run with EVALSHA through ioredis defineCommand): each
 * changes several keys at once, so concurrent processes never see half a change. Keys come from redis-keys.ts.
 */

/**
 * Merges settlements into the state hash (later fields win) and caps it by count and age. KEYS: state hash, state
 * order zset. ARGV: limit, now ms, retention cutoff ms, then inbound key / settlement JSON pairs.
 */
export const SETTLE_LUA = `
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local v = cjson.decode(ARGV[i + 1])
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    local o = cjson.decode(old)
    for f, x in pairs(v) do o[f] = x end
    v = o
  end
  redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(v))
  redis.call('ZADD', KEYS[2], now, ARGV[i])
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff)
local n = redis.call('ZCARD', KEYS[2]) - #gone
if n > limit then
  local extra = redis.call('ZRANGE', KEYS[2], #gone, #gone + n - limit - 1)
  for _, k in ipairs(extra) do gone[#gone + 1] = k end
end
for _, k in ipairs(gone) do
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
end
return #gone
`;

/**
 * Adds a failure, replacing one of the same message, and caps the list. KEYS: by-key hash, order zset, the new
 * item's hash. ARGV: failure key, new id, item key prefix, limit, then the item's field/value pairs.
 */
export const FAILURE_ADD_LUA = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('DEL', ARGV[3] .. old)
  redis.call('ZREM', KEYS[2], old)
end
redis.call('HSET', KEYS[3], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('ZCARD', KEYS[2])
local limit = tonumber(ARGV[4])
if n > limit then
  local extra = redis.call('ZRANGE', KEYS[2], 0, n - limit - 1)
  for _, id in ipairs(extra) do
    local k = redis.call('HGET', ARGV[3] .. id, 'k')
    if k and redis.call('HGET', KEYS[1], k) == id then redis.call('HDEL', KEYS[1], k) end
    redis.call('DEL', ARGV[3] .. id)
    redis.call('ZREM', KEYS[2], id)
  end
end
return 1
`;
/** Removes a failure. KEYS: by-key hash, order zset, item hash. ARGV: id. Returns 1 when it existed. */
export const FAILURE_REMOVE_LUA = `
local k = redis.call('HGET', KEYS[3], 'k')
if not k then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], k) == ARGV[1] then redis.call('HDEL', KEYS[1], k) end
return 1
`;
/** Records a failed replay on an existing failure. KEYS: item hash. ARGV: errcode ('' = null), reason, sent. */
export const FAILURE_UPDATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'errcode', ARGV[1], 'reason', ARGV[2], 'sent', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'replays', 1)
return 1
`;
