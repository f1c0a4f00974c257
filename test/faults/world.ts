/**
 * One fault scenario's world: a fresh strict fake WeCom, the bridge processes, the customers' messages, a feeder
 * that posts real encrypted kf callbacks and retries each until it gets 200 (as WeCom does), and the accounting
 * of the replies that reached the fake's send_msg: answered / duplicates / lost per inbound message.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { DEFAULT_CLUSTER_SHARDS } from '../../src/config.js';
import { queueShardPrefixes } from '../../src/pipeline/queue-shards.js';
import { buildKfCallback, postCallback, startFakeWecom, type FakeWecom, type SentMessage } from '../fakes/wecom-kf.js';
import { Bridge, sleep, type RedisServer } from './procs.js';
import { tally } from './tally.js';
import type { Result } from './util.js';

export type { Result } from './util.js';
export { pool, seeded } from './util.js';

/** Callback credentials shared by the fake and the bridge (not real secrets; the same as the e2e tests'). */
export const CREDS = {
  corpId: 'ww1234567890abcdef',
  kfSecret: 'test-kf-secret-0123456789',
  token: 'QDG6eK',
  encodingAesKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
};
export const KFID = 'wkFAULTS0000000000000000000000A1';
/**
 * The bridge's fixed Redis key prefix (deps.ts) and the keys that say whether work is still pending: BullMQ's lists
 * and sets of the `answers` queue (waiting, running, in backoff) and the kf pull marks.
 */
const QUEUE = 'bridge:answers';
/** The same on a Redis Cluster: one queue per shard (the default QUEUE_SHARDS), each under its hash tag. */
const CLUSTER_QUEUES = queueShardPrefixes('bridge', DEFAULT_CLUSTER_SHARDS, true).map((p) => `${p}:answers`);
const WANTED = 'bridge:kf:pulls-wanted';
/** A callback WeCom does not hear back from within this is retried (WeCom waits 5 s). */
const CALLBACK_TIMEOUT_MS = 5000;

/** What every scenario shares: the suite's Redis, a client on it, the run dir and the seeded random source. */
export interface Suite {
  redis: RedisServer;
  client: Redis;
  runDir: string;
  rand: () => number;
  /** scenarios not closed yet (the runner closes one that ran out of time) */
  open: Set<{ close(): Promise<void> }>;
  /** a 3-master Redis Cluster (AOF on) for the scenarios that run on one, started by the runner when one is chosen */
  cluster: { nodes: string; client: Cluster } | null;
}

export interface Msg {
  kfid: string;
  user: string;
  text: string;
  msgid: string;
  /** epoch ms when the first callback for it was accepted (200) */
  acceptedAt: number | null;
}

type Callback = { query: string; body: string };

export class Scenario {
  readonly msgs: Msg[] = [];
  readonly failures: string[] = [];
  readonly notes: string[] = [];
  readonly bridges: Bridge[] = [];
  readonly started = Date.now();
  /** non-200 callback outcomes seen by the feeder (status or error code), one per retried delivery */
  readonly refusals: string[] = [];
  private readonly byText = new Map<string, Msg>();
  private readonly byUser = new Map<string, Msg>();
  private readonly cleanups: Array<() => Promise<void>> = [];
  private closed = false;
  /** how a reply is matched to its message: its text (echo) or its customer (one message per customer) */
  attributeBy: 'text' | 'user' = 'text';
  /** whether a reply's text is right for its message (echo: the message's own text) */
  expectText: (m: Msg, content: string) => boolean = (m, c) => m.text === c;

  private constructor(
    readonly key: string,
    readonly label: string,
    readonly suite: Suite,
    readonly fake: FakeWecom,
    /** on the suite's Redis Cluster instead of its one Redis */
    readonly onCluster: boolean,
  ) {}

  /** @param o.cluster run the bridges on the suite's Redis Cluster (REDIS_CLUSTER_NODES) */
  static async open(key: string, label: string, suite: Suite, o: { cluster?: boolean } = {}): Promise<Scenario> {
    const cluster = o.cluster ? suite.cluster : null;
    if (o.cluster && !cluster) throw new Error('this scenario needs the suite’s Redis Cluster');
    // A fresh key space (the client may still be reconnecting after scenario (d) restarted Redis).
    for (let i = 0; ; i++) {
      try {
        if (cluster) await Promise.all(cluster.client.nodes('master').map((n) => n.flushall()));
        else await suite.client.flushall();
        break;
      } catch (e) {
        if (i >= 100) throw e;
        await sleep(100);
      }
    }
    const fake = await startFakeWecom({ corpId: CREDS.corpId, kfSecret: CREDS.kfSecret });
    const s = new Scenario(key, label, suite, fake, cluster !== null);
    s.defer(() => fake.close());
    suite.open.add(s);
    return s;
  }

  /** Runs `fn` when the scenario closes (last registered, first run). */
  defer(fn: () => Promise<void>): void {
    this.cleanups.unshift(fn);
  }

  /** The bridge's environment: kf channel on the fake, the suite's Redis, echo unless `extra` says otherwise. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      WECOM_CORP_ID: CREDS.corpId,
      WECOM_KF_SECRET: CREDS.kfSecret,
      WECOM_TOKEN: CREDS.token,
      WECOM_ENCODING_AES_KEY: CREDS.encodingAesKey,
      WECOM_API_BASE_URL: this.fake.url,
      ...(this.onCluster ? { REDIS_CLUSTER_NODES: this.suite.cluster!.nodes } : { REDIS_URL: this.suite.redis.url }),
      LLM_PROVIDER: 'echo',
      LOG_LEVEL: 'info',
      ...extra,
    };
  }

  async spawn(name: string, env: Record<string, string>): Promise<Bridge> {
    const b = await Bridge.start(`${this.key}-${name}`, env, this.suite.runDir);
    this.bridges.push(b);
    return b;
  }

  /** A new customer message in the fake (texts must be unique: the echo reply is matched by text). */
  add(user: string, label: string, kfid = KFID): Msg {
    const text = `${label}-${randomBytes(4).toString('hex')}`;
    const msgid = this.fake.addCustomerText({ open_kfid: kfid, external_userid: user, content: text });
    const m: Msg = { kfid, user, text, msgid, acceptedAt: null };
    this.msgs.push(m);
    this.byText.set(text, m);
    this.byUser.set(`${kfid}\u0000${user}`, m);
    return m;
  }

  /** A kf callback as WeCom posts it for `kfid`, with a fresh sync Token. */
  callback(kfid = KFID): Callback {
    return buildKfCallback(CREDS, { open_kfid: kfid, syncToken: this.fake.issueSyncToken() });
  }

  /**
   * Posts `cb` to `pick()` until it answers 200 `success` (a refused, failed or slow callback is retried, maybe on
   * another instance, as WeCom would). @returns the attempts it took
   */
  async deliver(cb: Callback, pick: () => string, msg?: Msg, giveUpAt = Date.now() + 60_000): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) return attempt;
      let outcome: string;
      try {
        const post = postCallback(pick(), '/wecom/kf/callback', cb);
        post.catch(() => undefined);
        const timeout = sleep(CALLBACK_TIMEOUT_MS).then(() => ({ status: 0, body: 'timeout' }));
        const r = await Promise.race([post, timeout]);
        if (r.status === 200 && r.body === 'success') {
          if (msg && msg.acceptedAt === null) msg.acceptedAt = Date.now();
          return attempt;
        }
        outcome = r.status === 0 ? 'timeout' : `HTTP ${r.status}`;
      } catch (e) {
        outcome = (e as NodeJS.ErrnoException).code ?? 'network error';
      }
      this.refusals.push(outcome);
      if (Date.now() > giveUpAt) {
        this.failures.push(`a callback was never accepted (last: ${outcome})`);
        return attempt;
      }
      await sleep(250);
    }
  }

  /** Replies at the fake's send_msg matched to their messages; `stray` matched none. */
  replies(): { per: Map<Msg, SentMessage[]>; stray: SentMessage[] } {
    const per = new Map<Msg, SentMessage[]>(this.msgs.map((m) => [m, []]));
    const stray: SentMessage[] = [];
    for (const s of this.fake.sent) {
      const m =
        this.attributeBy === 'text' ? this.byText.get(s.content ?? '') : this.byUser.get(`${s.open_kfid}\u0000${s.touser}`);
      if (m && m.user === s.touser && m.kfid === s.open_kfid) per.get(m)!.push(s);
      else stray.push(s);
    }
    return { per, stray };
  }

  answeredCount(): number {
    let n = 0;
    for (const list of this.replies().per.values()) if (list.length > 0) n++;
    return n;
  }

  /** Jobs of the bridge's BullMQ queue not finished: waiting, prioritized, running or in backoff. */
  async pending(): Promise<number> {
    const c = this.kv();
    const counts = await Promise.all(
      (this.onCluster ? CLUSTER_QUEUES : [QUEUE]).flatMap((q) => [c.llen(`${q}:wait`), c.llen(`${q}:active`), c.zcard(`${q}:delayed`), c.zcard(`${q}:prioritized`)]),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The client of the Redis this scenario's bridges use. */
  private kv(): Redis | Cluster {
    return this.onCluster ? this.suite.cluster!.client : this.suite.client;
  }

  /** No job waiting or leased and no account with an unserved callback (Redis unreachable: not quiet). */
  async quiet(): Promise<boolean> {
    try {
      const [due, wanted] = await Promise.all([this.pending(), this.kv().hlen(WANTED)]);
      return due === 0 && wanted === 0;
    } catch {
      return false;
    }
  }

  /**
   * Waits until every message is answered and the bridges have nothing pending (then 1 s more, to catch a late
   * duplicate), or until `budgetMs` has passed. @returns true when it ended quiet
   */
  async settle(budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    while (Date.now() < deadline) {
      if (this.answeredCount() === this.msgs.length && (await this.quiet())) {
        await sleep(1000);
        return true;
      }
      await sleep(100);
    }
    const pending = await this.pending().catch(() => -1);
    this.notes.push(`budget of ${Math.round(budgetMs / 1000)} s ran out with ${pending} job(s) still pending in Redis`);
    return false;
  }

  /** The scenario's row of the table, with its failures and notes (see tally.ts). */
  result(): Result {
    return tally(this);
  }

  /** How many lines of the bridges' logs contain `text` (e.g. a log message). */
  logCount(text: string): number {
    let n = 0;
    for (const b of this.bridges) {
      if (!existsSync(b.logPath)) continue;
      for (const line of readFileSync(b.logPath, 'utf8').split('\n')) if (line.includes(text)) n++;
    }
    return n;
  }

  /** Kills the bridges (their logs stay in the run dir) and closes the fakes. */
  async close(): Promise<void> {
    this.closed = true;
    this.suite.open.delete(this);
    for (const b of this.bridges) b.retired = true;
    await Promise.all(this.bridges.map((b) => b.kill9().then(() => b.stop())));
    for (const fn of this.cleanups) await fn().catch(() => undefined);
  }
}
