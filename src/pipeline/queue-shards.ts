import calculateSlot from 'cluster-key-slot';

/** Slots of a Redis Cluster (CLUSTER KEYSLOT is CRC16 mod this). */
const SLOTS = 16384;

/**
 * Where the answer jobs live: one BullMQ prefix per shard. A customer's jobs always go to the same shard (its order
 * key's hash), so per-customer order holds however many shards there are.
 *
 * On a Redis Cluster, every key of one BullMQ queue must sit in one slot (its scripts touch several), so each shard's
 * prefix carries a hash tag. The tags are picked so that shard i's slot falls in the i-th of `shards` equal slot
 * ranges: `redis-cli --cluster create` gives each master one contiguous range, so the shards spread over the
 * masters (two per master for 6 shards on 3) instead of landing wherever CRC16 happens to put `{q0}`, `{q1}`, ….
 * The choice depends only on (i, shards), so every process computes the same layout.
 *
 * With one Redis and one shard the layout is the one from before sharding (`<prefix>:answers:*`), so an upgrade
 * finds the jobs that were waiting.
 *
 * @param prefix the key prefix without its trailing colon, e.g. `bridge`
 * @param shards QUEUE_SHARDS (1-64)
 * @param cluster whether the keys go to a Redis Cluster (hash tags needed even for one shard)
 * @returns one BullMQ prefix per shard, e.g. `bridge:{q2-41}`
 */
export function queueShardPrefixes(prefix: string, shards: number, cluster: boolean): string[] {
  if (shards === 1 && !cluster) return [prefix];
  return Array.from({ length: shards }, (_, i) => `${prefix}:{${shardTag(i, shards)}}`);
}

/** The first tag `q<i>-<n>` whose slot falls in shard i's range of the slot space. */
function shardTag(i: number, shards: number): string {
  const from = Math.floor((i * SLOTS) / shards);
  const to = Math.floor(((i + 1) * SLOTS) / shards);
  for (let n = 0; ; n++) {
    const slot = calculateSlot(`q${i}-${n}`);
    if (slot >= from && slot < to) return `q${i}-${n}`;
  }
}

/**
 * The shard of one customer's jobs.
 * @param orderKey the customer (`orderKeyOf(jobId)`, e.g. `kf:<open_kfid>:<external_userid>`)
 * @returns 0 … shards-1, the same in every process
 */
export function shardOf(orderKey: string, shards: number): number {
  return shards === 1 ? 0 : calculateSlot(orderKey) % shards;
}

/**
 * A BullMQ prefix for a queue of its own (e.g. the kf pulls) that must also live in one slot on a cluster.
 * @returns `<prefix>` with one Redis, `<prefix>:{<name>}` on a cluster
 */
export function singleQueuePrefix(prefix: string, name: string, cluster: boolean): string {
  return cluster ? `${prefix}:{${name}}` : prefix;
}
