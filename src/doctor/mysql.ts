import { randomBytes } from 'node:crypto';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { maskCredentials } from '../errors.js';
import { defaultMigrationsDir, loadMigrations } from '../log/migrate.js';
import { poolOptionsFromUrl } from '../log/mysql-db.js';
import { fail, messageOf, pass, type DoctorResult } from './types.js';

/**
 * MYSQL_URL: the server answers `SELECT 1` as this user in this database, and either every migration is applied
 * or the user may create and alter tables there (the server applies pending migrations at start). The grant probe
 * creates, alters and drops one table of its own (`bridge_doctor_probe_<hex>`); nothing else is written.
 * @param migrationsDir default: this package's `migrations/`
 */
export async function checkMysql(url: string, migrationsDir = defaultMigrationsDir()): Promise<DoctorResult[]> {
  const shown = maskCredentials(url);
  let options;
  try {
    options = poolOptionsFromUrl(url);
  } catch (e) {
    return [fail('MySQL', `MYSQL_URL is not a URL: ${messageOf(e)}`, 'use mysql://user:password@host:3306/database')];
  }
  const { host, port, user, password, database, charset, timezone } = options;
  if (!database) return [fail('MySQL', `${shown} names no database`, 'add the database to MYSQL_URL, e.g. mysql://bridge:password@127.0.0.1:3306/bridge')];
  let conn: Connection;
  try {
    conn = await createConnection({ host, port, user, password, database, charset, timezone, connectTimeout: 3000 });
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    const fix =
      code === 'ER_ACCESS_DENIED_ERROR'
        ? `check the user and password in MYSQL_URL (the server refused ${JSON.stringify(user)})`
        : code === 'ER_BAD_DB_ERROR'
          ? `create it: CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, and GRANT ALL ON \`${database}\`.* to the user`
          : code === 'ER_DBACCESS_DENIED_ERROR'
            ? `GRANT ALL PRIVILEGES ON \`${database}\`.* TO the user of MYSQL_URL`
            : 'start MySQL/MariaDB or correct the host and port in MYSQL_URL';
    return [fail('MySQL', `${shown}: ${code ? `${code} ` : ''}${messageOf(e)}`, fix)];
  }
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 AS one, VERSION() AS version');
    const results = [pass('MySQL', `${shown} answers (${String(rows[0]?.version ?? '?')})`)];
    results.push(await checkSchema(conn, database, migrationsDir));
    return results;
  } catch (e) {
    return [fail('MySQL', `${shown}: ${messageOf(e)}`, 'check the server and the user of MYSQL_URL')];
  } finally {
    await conn.end().catch(() => undefined);
  }
}

async function checkSchema(conn: Connection, database: string, migrationsDir: string): Promise<DoctorResult> {
  const name = 'MySQL schema';
  const migrations = loadMigrations(migrationsDir);
  const latest = migrations.at(-1);
  let applied = new Set<number>();
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT version FROM schema_migrations');
    applied = new Set(rows.map((r) => Number(r.version)));
  } catch (e) {
    if ((e as { code?: string }).code !== 'ER_NO_SUCH_TABLE') throw e;
  }
  const pending = migrations.filter((m) => !applied.has(m.version));
  if (pending.length === 0) return pass(name, `every migration is applied${latest ? ` (up to ${latest.name})` : ''}`);
  const probe = `bridge_doctor_probe_${randomBytes(4).toString('hex')}`;
  let created = false;
  try {
    await conn.query(`CREATE TABLE \`${probe}\` (id INT UNSIGNED NOT NULL PRIMARY KEY) ENGINE=InnoDB`);
    created = true;
    await conn.query(`ALTER TABLE \`${probe}\` ADD COLUMN note VARCHAR(8) NULL, ADD INDEX idx_note (note)`);
    await conn.query(`INSERT INTO \`${probe}\` (id, note) VALUES (1, 'x')`);
    await conn.query(`DELETE FROM \`${probe}\` WHERE id = 1`);
    await conn.query(`DROP TABLE \`${probe}\``);
    created = false;
    return pass(name, `${pending.length} migration(s) pending (${pending.map((m) => m.name).join(', ')}): the server applies them at start; the user may create and alter tables`);
  } catch (e) {
    return fail(
      name,
      `${pending.length} migration(s) pending and the user may not apply them: ${messageOf(e)}`,
      `GRANT ALL PRIVILEGES ON \`${database}\`.* TO the user of MYSQL_URL (or apply migrations/*.sql as an administrator)`,
    );
  } finally {
    if (created) await conn.query(`DROP TABLE IF EXISTS \`${probe}\``).catch(() => undefined);
  }
}
