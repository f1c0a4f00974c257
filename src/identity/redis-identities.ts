/**
 * Customer identities in Redis (REDIS_URL without MYSQL_URL), shared by every process and kept across restarts:
 * a hash identity → customer id, one hash per customer, and a sorted set by lastSeen for `/admin/customers`.
 * Creating a customer is one Lua script, so two processes resolving a new identity at once agree on one id.
 */
import type { RedisClient } from '../store/redis-client.js';
import { dataKeys } from '../log/redis-keys.js';
import { identityKeyOf, newCustomerId } from './customer-id.js';
import { clampCustomerLimit, customerRecord, identitiesMatch } from './find.js';
import type { CustomerRecord, Identity, IdentityStore } from './types.js';

const RESOLVE_LUA = `
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id and redis.call('EXISTS', ARGV[4] .. id) == 1 then
  redis.call('HSET', ARGV[4] .. id, 'lastSeen', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  return id
end
id = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', ARGV[4] .. id, 'identities', ARGV[5], 'firstSeen', ARGV[3], 'lastSeen', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], id)
return id
`;
const ERASE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`;
const NICKNAME_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'nickname', ARGV[1]) end
return 1
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/**
 * @param redis a connected client, not owned
 * @param prefix key prefix (src/log/redis-keys.ts)
 * Methods throw the client's error when Redis cannot answer.
 */
export function createRedisIdentities(redis: RedisClient, prefix: string, now: () => number = Date.now): IdentityStore {
  const keys = dataKeys(prefix);
  redis.defineCommand('bridgeIdentityResolve', { lua: RESOLVE_LUA, numberOfKeys: 2 });
  redis.defineCommand('bridgeIdentityErase', { lua: ERASE_LUA, numberOfKeys: 3 });
  redis.defineCommand('bridgeIdentityNickname', { lua: NICKNAME_LUA, numberOfKeys: 1 });
  const cmd = (name: string) => (redis as unknown as Record<string, Script>)[name]!.bind(redis);
  const [resolveCmd, eraseCmd, nicknameCmd] = [cmd('bridgeIdentityResolve'), cmd('bridgeIdentityErase'), cmd('bridgeIdentityNickname')];
  const customerPrefix = keys.customer('');

  const decode = (id: string, h: Record<string, string>): CustomerRecord | null => {
    if (!h.identities) return null;
    return customerRecord(id, JSON.parse(h.identities) as Identity[], h.nickname ?? null, Number(h.firstSeen), Number(h.lastSeen));
  };
  const load = async (ids: string[]): Promise<CustomerRecord[]> => {
    if (ids.length === 0) return [];
    const p = redis.pipeline();
    for (const id of ids) p.hgetall(keys.customer(id));
    const results = (await p.exec()) ?? [];
    return results.flatMap(([err, h], i) => {
      if (err) throw err;
      const c = decode(ids[i]!, h as Record<string, string>);
      return c ? [c] : [];
    });
  };

  return {
    kind: 'redis',
    async resolve(identity) {
      const one: Identity = { channel: identity.channel, account: identity.account, externalId: identity.externalId };
      return String(await resolveCmd(keys.identityIndex, keys.customerSeen, identityKeyOf(one), newCustomerId(), now(), customerPrefix, JSON.stringify([one])));
    },
    get: async (id) => (await load([id]))[0] ?? null,
    async find(q) {
      const limit = clampCustomerLimit(q.limit);
      if (q.channel !== undefined && q.account !== undefined && q.externalId !== undefined) {
        const id = await redis.hget(keys.identityIndex, identityKeyOf({ channel: q.channel, account: q.account, externalId: q.externalId }));
        return id === null ? [] : load([id]);
      }
      // Most recently seen first, in chunks, until the page is full.
      const out: CustomerRecord[] = [];
      for (let start = 0; out.length < limit; start += 500) {
        const ids = await redis.zrevrange(keys.customerSeen, start, start + 499);
        for (const c of await load(ids)) {
          if (identitiesMatch(c.identities, q)) out.push(c);
          if (out.length === limit) break;
        }
        if (ids.length < 500) break;
      }
      return out;
    },
    async identityOf(id) {
      const raw = await redis.hget(keys.customer(id), 'identities');
      const first = raw ? (JSON.parse(raw) as Identity[])[0] : undefined;
      return first ?? null;
    },
    async setNickname(id, nickname) {
      await nicknameCmd(keys.customer(id), nickname);
    },
    async erase(id) {
      const raw = await redis.hget(keys.customer(id), 'identities');
      const idKeys = raw ? (JSON.parse(raw) as Identity[]).map(identityKeyOf) : [];
      return (await eraseCmd(keys.customer(id), keys.identityIndex, keys.customerSeen, id, ...idKeys)) === 1;
    },
    close: async () => undefined,
  };
}
