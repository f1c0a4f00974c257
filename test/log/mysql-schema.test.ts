import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createDataLayer, type DataLayer } from '../../src/log/create.js';
import { defaultMigrationsDir, loadMigrations, MIGRATION_LOCK } from '../../src/log/migrate.js';
import { createMetrics } from '../../src/metrics.js';
import { createTestDatabase, mysqlUrl, type TestDatabase } from '../helpers/mysql.js';
import { captureLog, FAST, inbound } from './support.js';

const config = (url: string) => ({ mysqlUrl: url, memoryLimit: 10_000, logContent: true, retentionDays: 180 });

describe.skipIf(!mysqlUrl)('mysql schema and migrations', () => {
  const dbs: TestDatabase[] = [];
  const layers: DataLayer[] = [];
  const freshDb = async () => {
    const db = await createTestDatabase('schema');
    dbs.push(db);
    return db;
  };
  const open = async (db: TestDatabase, migrationsDir?: string) => {
    const logs = captureLog();
    const layer = await createDataLayer(config(db.url), {
      redis: null,
      redisPrefix: 'unused:',
      log: logs.log,
      metrics: createMetrics({ defaultMetrics: false, mysql: true }),
      tuning: { ...FAST, migrationsDir },
    });
    layers.push(layer);
    return { layer, logs };
  };
  afterEach(async () => {
    for (const l of layers.splice(0)) await l.close();
  });
  afterAll(async () => {
    for (const db of dbs) await db.drop();
  });

  it('mysql: migrations from an empty database create every table and record version 1; a second start applies nothing', async () => {
    const db = await freshDb();
    const first = await open(db);
    expect(first.logs.lines.filter((l) => l.msg === 'MySQL migrations applied')).toMatchObject([{ versions: [1] }]);
    const tables = (await db.query('SHOW TABLES')).map((r) => Object.values(r)[0]);
    expect(tables.sort()).toEqual(['customers', 'failures', 'identities', 'messages', 'schema_migrations', 'settlements']);
    expect(await db.query('SELECT version, name FROM schema_migrations')).toEqual([{ version: 1, name: '001_init.sql' }]);
    const second = await open(db);
    expect(second.logs.messages()).not.toContain('MySQL migrations applied');
    expect(await db.query('SELECT COUNT(*) AS n FROM schema_migrations')).toEqual([{ n: 1 }]);
  });

  it('mysql: a new migration file is applied once, after the ones before it', async () => {
    const db = await freshDb();
    const dir = mkdtempSync(join(tmpdir(), 'bridge-migrations-'));
    try {
      copyFileSync(join(defaultMigrationsDir(), '001_init.sql'), join(dir, '001_init.sql'));
      await open(db, dir);
      writeFileSync(join(dir, '002_notes.sql'), '-- a test migration\nCREATE TABLE notes (id INT PRIMARY KEY);\nINSERT INTO notes VALUES (1);\n');
      const { logs } = await open(db, dir);
      expect(logs.lines.find((l) => l.msg === 'MySQL migrations applied')).toMatchObject({ versions: [2] });
      await open(db, dir);
      expect(await db.query('SELECT id FROM notes')).toEqual([{ id: 1 }]);
      expect((await db.query('SELECT version FROM schema_migrations ORDER BY version')).map((r) => r.version)).toEqual([1, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`mysql: two createDataLayer at once on one empty database both succeed; ${MIGRATION_LOCK} lets one migrate`, async () => {
    const db = await freshDb();
    const [a, b] = await Promise.all([open(db), open(db)]);
    const applied = [...a.logs.lines, ...b.logs.lines].filter((l) => l.msg === 'MySQL migrations applied');
    expect(applied).toHaveLength(1);
    expect(await db.query('SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
    a.layer.log.record(inbound({ msgid: 'from-a' }));
    b.layer.log.record(inbound({ msgid: 'from-b' }));
    await Promise.all([a.layer.log.flush(), b.layer.log.flush()]);
    expect((await db.query('SELECT msgid FROM messages ORDER BY msgid')).map((r) => r.msgid)).toEqual(['from-a', 'from-b']);
  });

  it('mysql: utf8mb4 round trip: emoji and CJK in content, external ids and nicknames', async () => {
    const db = await freshDb();
    const { layer } = await open(db);
    const text = '你好，世界 🎉👨‍👩‍👧 𠮷野家 ｶﾀｶﾅ';
    layer.log.record(inbound({ msgid: 'u1', content: text, externalId: 'o_😀_用户' }));
    await layer.log.flush();
    const [row] = (await layer.log.query({ limit: 1, cursor: null, text: '𠮷野家' })).items;
    expect(row).toMatchObject({ content: text, externalId: 'o_😀_用户', length: [...text].length });
    const id = await layer.identities.resolve({ channel: 'mp', account: 'wxAPP', externalId: 'o_😀_用户' });
    await layer.identities.setNickname(id, '🐼 熊猫');
    expect((await layer.identities.get(id))?.nickname).toBe('🐼 熊猫');
    const [raw] = await db.query<RowDataPacket>('SELECT HEX(content) AS h FROM messages');
    expect(Buffer.from(String(raw!.h), 'hex').toString('utf8')).toBe(text);
  });

  it('mysql: tables are utf8mb4_unicode_ci with byte-exact identifiers; every query filter has an index', async () => {
    const db = await freshDb();
    const { layer } = await open(db);
    const tables = await db.query('SELECT TABLE_NAME AS t, TABLE_COLLATION AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [db.name]);
    for (const t of tables.filter((x) => x.t !== 'schema_migrations')) expect(t.c).toBe('utf8mb4_unicode_ci');
    const cols = await db.query('SELECT COLUMN_NAME AS n, COLLATION_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [db.name, 'messages']);
    const collation = Object.fromEntries(cols.map((c) => [c.n, c.c]));
    expect(collation).toMatchObject({ content: 'utf8mb4_unicode_ci', msgid: 'utf8mb4_bin', external_id: 'utf8mb4_bin', customer_id: 'utf8mb4_bin' });
    const indexes = await db.query('SELECT INDEX_NAME AS i, COLUMN_NAME AS c, SEQ_IN_INDEX AS s FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [db.name, 'messages']);
    const leading = new Set(indexes.filter((x) => Number(x.s) === 1).map((x) => x.c));
    for (const c of ['id', 'channel', 'account', 'customer_id', 'direction', 'status', 'at', 'msgid']) expect(leading).toContain(c);
    // Openids that differ only in case are two people.
    const lower = await layer.identities.resolve({ channel: 'mp', account: 'wxAPP', externalId: 'oabc' });
    const upper = await layer.identities.resolve({ channel: 'mp', account: 'wxAPP', externalId: 'oABC' });
    expect(lower).not.toBe(upper);
    const unique = indexes.filter((x) => x.i === 'uq_messages_row_key');
    expect(unique).toHaveLength(1);
    const idIdx = await db.query('SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ? ORDER BY SEQ_IN_INDEX', [db.name, 'identities', 'uq_identities_identity']);
    expect(idIdx.map((x) => x.c)).toEqual(['channel', 'account', 'external_id']);
  });

  it('mysql: every migration statement splits cleanly', () => {
    const [init] = loadMigrations(defaultMigrationsDir());
    expect(init!.version).toBe(1);
    expect(init!.statements).toHaveLength(5);
    for (const s of init!.statements) expect(s).toMatch(/^CREATE TABLE IF NOT EXISTS \w+ \(/);
  });
});
