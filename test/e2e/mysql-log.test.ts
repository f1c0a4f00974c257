/**
 * The message log in a real MariaDB through the real server: rows for every reply kind and status, and MariaDB
 * killed (kill -9) while customers write: every customer is answered exactly once meanwhile, and the rows are
 * written once it is back.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_KFID, sleep, startHarness, textsTo, type Harness } from '../helpers/harness.js';
import { canStartMariadb, createTestDatabase, mysqlUrl, type TestDatabase } from '../helpers/mysql.js';
import { startMariadb, type MariadbServer } from '../setup/services.js';
import { PNG_1X1 } from '../llm/contract-drivers.js';

describe.skipIf(!mysqlUrl)('message log in MariaDB (mysql)', () => {
  let db: TestDatabase;
  let h: Harness | undefined;
  beforeAll(async () => {
    db = await createTestDatabase('e2e_log');
  });
  afterAll(async () => db?.drop());
  afterEach(async () => h?.close());

  it('mysql: every reply kind and inbound status lands as rows (answer, command, fallback, hand-off, skipped)', async () => {
    h = await startHarness({ env: { MYSQL_URL: db.url } });
    await h.customerSays('wmKinds', '你好');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmKinds').length === 1);
    await h.customerSays('wmKinds', '重置');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmKinds').length === 2);
    h.fake.addCustomerMessage({ open_kfid: OPEN_KFID, external_userid: 'wmKinds', msgtype: 'image', body: { media_id: h.fake.addMedia(PNG_1X1, 'image/png', 'a.png') } });
    await h.callback();
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmKinds').length === 3);
    await h.customerSays('wmKinds', '转人工');
    await h.fake.waitFor(() => textsTo(h!.fake, 'wmKinds').length === 4);
    await h.customerSays('wmKinds', '有人吗');
    // The rows are written in the background after each reply: read until all nine are there (or 10 s pass).
    let inbound: string[];
    let outbound: string[];
    const deadline = Date.now() + 10_000;
    do {
      await sleep(100);
      await h.deps.data.log.flush();
      const rows = await db.query<{ direction: string; type: string; status: string; content: string } & RowDataPacket>(
        'SELECT direction, type, status, content FROM messages WHERE external_id = ? ORDER BY id',
        ['wmKinds'],
      );
      inbound = rows.filter((r) => r.direction === 'in').map((r) => `${r.type}:${r.status}`);
      outbound = rows.filter((r) => r.direction === 'out').map((r) => `${r.type}:${r.status}`);
    } while ((inbound.length < 5 || outbound.length < 4 || inbound.includes('text:pending')) && Date.now() < deadline);
    expect(inbound).toEqual(['text:answered', 'text:command', 'image:fallback', 'text:command', 'text:skipped']);
    expect(outbound).toEqual(['answer:sent', 'command:sent', 'fallback:sent', 'handoff:sent']);
  });
});

describe.skipIf(!canStartMariadb)('MariaDB killed while customers write (mysql)', () => {
  let server: MariadbServer | undefined;
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    await server?.stop();
  });

  it('mysql: kill -9 mid-run: every customer answered exactly once; the rows are written after the restart', { timeout: 150_000 }, async () => {
    server = await startMariadb();
    await server.rootQuery('CREATE DATABASE bridge_kill CHARACTER SET utf8mb4');
    const url = `${server.rootUrl.replace(/\/$/, '')}/bridge_kill`;
    h = await startHarness({ env: { MYSQL_URL: url }, overrides: { dataTuning: { probeEveryMs: 300, writer: { maxBackoffMs: 500 } } } });
    const users = Array.from({ length: 200 }, (_, i) => `wmKill${i}`);
    for (const [i, u] of users.entries()) {
      if (i === 50) await server.kill9();
      await h.customerSays(u, `消息${i}`);
    }
    await h.fake.waitFor(() => h!.fake.sent.length >= users.length, 60_000);
    await sleep(300);
    expect(users.map((u) => textsTo(h!.fake, u))).toEqual(users.map((_, i) => [`消息${i}`]));
    await server.restart();
    const deadline = Date.now() + 45_000;
    let count = 0;
    while (Date.now() < deadline) {
      const [row] = (await server.rootQuery('SELECT COUNT(*) AS n FROM bridge_kill.messages')) as Array<{ n: number }>;
      count = Number(row?.n ?? 0);
      if (count >= users.length * 2) break;
      await sleep(300);
    }
    expect(count).toBe(users.length * 2);
    const metrics = (await h.deps.metrics.registry.getSingleMetricAsString('bridge_log_writes_total')) ?? '';
    expect(metrics).toMatch(/outcome="dropped"} 0/);
  });
});
