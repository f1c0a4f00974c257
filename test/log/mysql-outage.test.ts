import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDataLayer, type DataLayer, type DataTuning } from '../../src/log/create.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { canStartMariadb, startPrivateMariadb, withDatabase } from '../helpers/mysql.js';
import { freePort, type MariadbServer } from '../setup/services.js';
import { captureLog, FAST, inbound, logWrites } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};

/** A MariaDB of this file's own (it gets killed), with a password user as a deployment has. */
describe.skipIf(!canStartMariadb)('mysql outages (a private mariadbd, kill -9)', () => {
  let server: MariadbServer & { url: string };
  let url: string;
  const layers: DataLayer[] = [];
  const open = async (tuning: DataTuning = FAST) => {
    const logs = captureLog();
    const metrics = createMetrics({ defaultMetrics: false, mysql: true });
    const layer = await createDataLayer({ mysqlUrl: url, memoryLimit: 10_000, logContent: true, retentionDays: 180 }, { redis: null, redisPrefix: 'x:', log: logs.log, metrics, tuning });
    layers.push(layer);
    return { layer, logs, metrics };
  };
  const count = async (): Promise<number> => {
    const rows = (await server.rootQuery('SELECT COUNT(*) AS n FROM bridge.messages')) as RowDataPacket[];
    return Number(rows[0]!.n);
  };
  const up = async (m: Metrics) => (await m.mysqlUp!.get()).values[0]?.value;

  beforeAll(async () => {
    server = await startPrivateMariadb();
    await server.rootQuery("CREATE USER 'bridge'@'127.0.0.1' IDENTIFIED BY 'S3cret-pw'");
    await server.rootQuery("GRANT ALL PRIVILEGES ON bridge.* TO 'bridge'@'127.0.0.1'");
    url = withDatabase(`mysql://bridge:S3cret-pw@127.0.0.1:${server.port}/`, 'bridge');
  }, 60_000);
  afterEach(async () => {
    for (const l of layers.splice(0)) await l.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('mysql: kill -9 while rows are recorded: nothing throws, rows are retried and all written after the restart', async () => {
    const { layer, metrics } = await open();
    await server.rootQuery('DELETE FROM bridge.messages');
    let recorded = 0;
    let stop = false;
    const producer = (async () => {
      while (!stop) {
        for (let i = 0; i < 20; i++) {
          layer.log.record(inbound({ msgid: `k${recorded}`, content: `row ${recorded}` }));
          if (recorded % 3 === 0) layer.log.settle({ channel: 'kf', account: 'wkAAA', msgid: `k${recorded}` }, { status: 'answered' });
          recorded++;
        }
        await sleep(5);
      }
    })();
    await until('rows written before the kill', async () => (await logWrites(metrics, 'ok')) > 200);
    await server.kill9();
    await until('the writer to notice', () => !layer.log.health().ok);
    await sleep(500);
    expect(await up(metrics)).toBe(0);
    expect(layer.log.health().buffered).toBeGreaterThan(0);
    await server.restart();
    await sleep(300);
    stop = true;
    await producer;
    await layer.log.flush();
    expect(await count()).toBe(recorded);
    const settled = (await server.rootQuery("SELECT COUNT(*) AS n FROM bridge.messages WHERE status = 'answered'")) as RowDataPacket[];
    expect(Number(settled[0]!.n)).toBe(Math.ceil(recorded / 3));
    expect(await logWrites(metrics, 'retried')).toBeGreaterThan(0);
    expect((await logWrites(metrics, 'ok')) + (await logWrites(metrics, 'retried'))).toBe(recorded);
    expect(await logWrites(metrics, 'dropped')).toBe(0);
    expect(layer.log.health()).toMatchObject({ ok: true, buffered: 0, dropped: 0 });
    expect(await up(metrics)).toBe(1);
  }, 60_000);

  it('mysql: with a tiny buffer the oldest rows are dropped during the outage, counted and logged once', async () => {
    const { layer, logs, metrics } = await open({ ...FAST, writer: { ...FAST.writer, capacity: 50 } });
    await server.rootQuery('DELETE FROM bridge.messages');
    layer.log.record(inbound({ msgid: 'before' }));
    await layer.log.flush();
    await server.kill9();
    for (let i = 0; i < 200; i++) layer.log.record(inbound({ msgid: `d${i}` }));
    expect(layer.log.health()).toMatchObject({ buffered: 50, dropped: 150 });
    expect(await logWrites(metrics, 'dropped')).toBe(150);
    await until('a failed write', () => !layer.log.health().ok);
    // More rows during the same outage: still one line.
    for (let i = 200; i < 260; i++) layer.log.record(inbound({ msgid: `d${i}` }));
    await sleep(400);
    const full = logs.lines.filter((l) => String(l.msg).includes('buffer full'));
    expect(full).toHaveLength(1);
    expect(full[0]).toMatchObject({ level: 40, buffer: 50 });
    await server.restart();
    await layer.log.flush();
    expect(await logWrites(metrics, 'dropped')).toBe(210);
    const rows = (await server.rootQuery('SELECT msgid FROM bridge.messages ORDER BY id')) as RowDataPacket[];
    expect(rows.map((r) => r.msgid)).toEqual(['before', ...Array.from({ length: 50 }, (_, i) => `d${210 + i}`)]);
    const recovered = logs.lines.filter((l) => String(l.msg).includes('takes writes again'));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ dropped: 210 });
    expect(logs.lines.filter((l) => String(l.msg).includes('MySQL answers again'))).toHaveLength(1);
  }, 60_000);

  it('mysql: unreachable at start: one line naming MYSQL_URL (masked), address and reason; rows buffered, written when it answers', async () => {
    await server.kill9();
    const { layer, logs, metrics } = await open();
    const lines = logs.lines.filter((l) => String(l.msg).startsWith('MYSQL_URL'));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toContain(`MYSQL_URL mysql://***@127.0.0.1:${server.port}/bridge is unreachable: `);
    expect(lines[0]!.msg).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify(logs.lines)).not.toContain('S3cret-pw');
    expect(await up(metrics)).toBe(0);
    layer.log.record(inbound({ msgid: 'waiting' }));
    await expect(layer.log.query({ limit: 10, cursor: null })).rejects.toThrow(/cannot answer/);
    await sleep(600);
    expect(logs.lines.filter((l) => String(l.msg).startsWith('MYSQL_URL'))).toHaveLength(1);
    expect(layer.log.health()).toMatchObject({ ok: false, buffered: 1 });
    await server.restart();
    await until('the probe to reconnect', async () => (await up(metrics)) === 1);
    await layer.log.flush();
    expect((await layer.log.query({ limit: 10, cursor: null })).items.map((r) => r.msgid)).toContain('waiting');
    expect(layer.log.health().ok).toBe(true);
  }, 60_000);

  it('mysql: a server that never existed at start gets migrated when it appears', async () => {
    const port = await freePort();
    const later = `mysql://root@127.0.0.1:${port}/bridge`;
    const logs = captureLog();
    const metrics = createMetrics({ defaultMetrics: false, mysql: true });
    const layer = await createDataLayer({ mysqlUrl: later, memoryLimit: 10_000, logContent: true, retentionDays: 180 }, { redis: null, redisPrefix: 'x:', log: logs.log, metrics, tuning: FAST });
    layers.push(layer);
    layer.log.record(inbound({ msgid: 'first-ever' }));
    const id = layer.identities.resolve({ channel: 'kf', account: 'ww', externalId: 'u' });
    await expect(id).rejects.toThrow();
    const second = await startPrivateMariadb({ port });
    try {
      await until('migrations', () => logs.lines.some((l) => l.msg === 'MySQL migrations applied'));
      await layer.log.flush();
      expect((await layer.log.query({ limit: 10, cursor: null })).items.map((r) => r.msgid)).toEqual(['first-ever']);
      expect(await layer.identities.resolve({ channel: 'kf', account: 'ww', externalId: 'u' })).toMatch(/^cus_/);
    } finally {
      await layer.close();
      layers.pop();
      await second.stop();
    }
  }, 60_000);
});
