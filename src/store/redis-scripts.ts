/**
 * Lua scripts of the Redis store. Each runs atomically on the server, which is what makes "check then change"
 * safe across processes (lock release and renewal by owner, clearing a mark only at the generation served).
 */

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
