/**
 * Failed replies in Redis: one hash per failure (fixed fields as JSON, the fields a replay changes beside it), a
 * sorted set of ids for newest-first paging and a hash channel/account/msgid → id so a second failure of the same
 * message replaces the first. Changes that touch several keys run as Lua scripts, so two processes cannot leave a
 * half-replaced failure. At most `limit` are kept (the oldest go).
 */
import type { RedisClient } from '../store/redis-client.js';
import { failureKeyOf, parseSeq } from './memory-failures.js';
import { dataKeys } from './redis-keys.js';
import { FAILURE_ADD_LUA, FAILURE_REMOVE_LUA, FAILURE_UPDATE_LUA } from './redis-lua.js';
import { clampLimit } from './row.js';
import { LogUnavailableError, type FailedReply, type FailureStore } from './types.js';

type Script = (...args: (string | number)[]) => Promise<number>;

/** The fields that never change after `add`. */
type Fixed = Omit<FailedReply, 'id' | 'errcode' | 'reason' | 'sent' | 'replays'>;

/**
 * @param redis a connected client, not owned
 * @param prefix key prefix (redis-keys.ts)
 * @param limit failures kept at most
 * Every method throws LogUnavailableError when Redis cannot answer.
 */
export function createRedisFailures(redis: RedisClient, prefix: string, limit: number, now: () => number = Date.now): FailureStore {
  const keys = dataKeys(prefix);
  redis.defineCommand('bridgeFailureAdd', { lua: FAILURE_ADD_LUA, numberOfKeys: 3 });
  redis.defineCommand('bridgeFailureRemove', { lua: FAILURE_REMOVE_LUA, numberOfKeys: 3 });
  redis.defineCommand('bridgeFailureUpdate', { lua: FAILURE_UPDATE_LUA, numberOfKeys: 1 });
  const cmd = (name: string) => (redis as unknown as Record<string, Script>)[name]!.bind(redis);
  const [addCmd, removeCmd, updateCmd] = [cmd('bridgeFailureAdd'), cmd('bridgeFailureRemove'), cmd('bridgeFailureUpdate')];
  const itemPrefix = keys.failure('');

  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw new LogUnavailableError(`the failures list (redis) cannot answer: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const decode = (id: string, h: Record<string, string>): FailedReply | null => {
    if (!h.data) return null;
    const fixed = JSON.parse(h.data) as Fixed;
    return { id, ...fixed, errcode: h.errcode ? Number(h.errcode) : null, reason: h.reason ?? '', sent: Number(h.sent ?? 0), replays: Number(h.replays ?? 0) };
  };
  const load = async (ids: string[]): Promise<FailedReply[]> => {
    if (ids.length === 0) return [];
    const p = redis.pipeline();
    for (const id of ids) p.hgetall(keys.failure(id));
    const results = (await p.exec()) ?? [];
    return results.flatMap(([err, h], i) => {
      if (err) throw err;
      const f = decode(ids[i]!, h as Record<string, string>);
      return f ? [f] : [];
    });
  };
  const remove = async (id: string) => (await removeCmd(keys.failureByKey, keys.failureOrder, keys.failure(id), id)) === 1;

  return {
    add: (input) =>
      guard(async () => {
        const id = String(await redis.incr(keys.failureSeq));
        const { atMs, errcode, reason, sent, ...rest } = input;
        const fixed: Fixed = { ...rest, at: new Date(atMs ?? now()).toISOString() };
        const k = failureKeyOf(input);
        const fields = ['k', k, 'c', input.customerId, 'data', JSON.stringify(fixed), 'errcode', errcode === null ? '' : String(errcode), 'reason', reason, 'sent', String(sent), 'replays', '0'];
        await addCmd(keys.failureByKey, keys.failureOrder, keys.failure(id), k, id, itemPrefix, limit, ...fields);
        return { id, ...fixed, errcode, reason, sent, replays: 0 };
      }),
    list: (n, cursor) =>
      guard(async () => {
        const max = clampLimit(n);
        const before = cursor === null ? '+inf' : parseSeq(cursor);
        if (Number.isNaN(before)) return { items: [], nextCursor: null };
        const ids = await redis.zrevrangebyscore(keys.failureOrder, typeof before === 'number' ? `(${before}` : before, '-inf', 'LIMIT', 0, max + 1);
        const items = await load(ids.slice(0, max));
        return { items, nextCursor: ids.length > max && items.length > 0 ? items[items.length - 1]!.id : null };
      }),
    get: (id) =>
      guard(async () => {
        if (Number.isNaN(parseSeq(id))) return null;
        return (await load([id]))[0] ?? null;
      }),
    remove: (id) => guard(() => (Number.isNaN(parseSeq(id)) ? Promise.resolve(false) : remove(id))),
    update: (id, change) =>
      guard(async () => {
        if (Number.isNaN(parseSeq(id))) return;
        await updateCmd(keys.failure(id), change.errcode === null ? '' : String(change.errcode), change.reason, String(change.sent));
      }),
    forgetCustomer: (customerId) =>
      guard(async () => {
        const ids = await redis.zrange(keys.failureOrder, '0', '-1');
        const p = redis.pipeline();
        for (const id of ids) p.hget(keys.failure(id), 'c');
        const owners = (await p.exec()) ?? [];
        let n = 0;
        for (let i = 0; i < ids.length; i++) if (owners[i]?.[1] === customerId && (await remove(ids[i]!))) n++;
        return n;
      }),
  };
}
