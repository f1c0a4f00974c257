/**
 * Lua scripts of the Redis store. Each runs atomically on the server, which is what makes "check then change"
 * safe across processes (lock release by owner, claim under a lease, hand-off only if new). Times come from
 * the Redis server's clock (TIME) so processes on hosts with skewed clocks still agree on lease expiry.
 */

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: job, due · ARGV: id, payload, leaseMs, ttlMs → 1 created / 0 existed */
export const HAND_OFF = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
${NOW}
local due = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'queued', 'payload', ARGV[2], 'attempts', 0, 'due', due)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], due, ARGV[1])
return 1`;

/** KEYS: job, due · ARGV: id, owner, leaseMs → {status[, payload, attempts, progress]} */
export const CLAIM = `
local s = redis.call('HMGET', KEYS[1], 'state', 'owner', 'due')
if not s[1] then redis.call('ZREM', KEYS[2], ARGV[1]) return {'missing'} end
if s[1] == 'done' then redis.call('ZREM', KEYS[2], ARGV[1]) return {'done'} end
${NOW}
if s[1] == 'processing' and s[2] ~= ARGV[2] and tonumber(s[3]) > now then return {'busy'} end
local due = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'processing', 'owner', ARGV[2], 'due', due)
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZADD', KEYS[2], due, ARGV[1])
local r = redis.call('HMGET', KEYS[1], 'payload', 'progress')
return {'claimed', r[1], tostring(attempts), r[2]}`;

const OWNED = `local s = redis.call('HMGET', KEYS[1], 'state', 'owner')
if s[1] ~= 'processing' or s[2] ~= ARGV[2] then return 0 end`;

/** KEYS: job, due · ARGV: id, owner, leaseMs → 1 / 0 (not the owner) */
export const RENEW_JOB = `
${OWNED}
${NOW}
local due = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'due', due)
redis.call('ZADD', KEYS[2], due, ARGV[1])
return 1`;

/** KEYS: job · ARGV: unused, owner, progress → 1 / 0 */
export const SAVE_PROGRESS = `
${OWNED}
redis.call('HSET', KEYS[1], 'progress', ARGV[3])
return 1`;

/** KEYS: job, due · ARGV: id, owner → 1 / 0. The payload goes: a done record only serves dedup. */
export const COMPLETE = `
${OWNED}
redis.call('HSET', KEYS[1], 'state', 'done')
redis.call('HDEL', KEYS[1], 'owner', 'payload', 'progress')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

/** KEYS: job, due · ARGV: id, owner, delayMs → 1 / 0 */
export const RELEASE_JOB = `
${OWNED}
${NOW}
local due = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'queued', 'due', due)
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZADD', KEYS[2], due, ARGV[1])
return 1`;

/** KEYS: key · ARGV: value → 1 deleted / 0 */
export const DEL_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** KEYS: key · ARGV: owner, ttlMs → 1 / 0 */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** KEYS: hash · ARGV: member, generation → 1 cleared / 0 */
export const CLEAR_WANTED = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;

/** KEYS: counter · ARGV: ttlMs → the new value (expiry set only when the key is created) */
export const INCR_WITH_TTL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;
