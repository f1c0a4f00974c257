/**
 * Versioned SQL migrations: `migrations/NNN_name.sql` at the top of the package, applied in order at start and
 * recorded in `schema_migrations`. Two processes starting at once must not both apply one, so the whole run holds
 * the server-wide named lock `wechat_ai_bridge_migrations` (GET_LOCK, MySQL 8 and MariaDB alike).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';

/** The named lock held while migrating. */
export const MIGRATION_LOCK = 'wechat_ai_bridge_migrations';
/** Seconds GET_LOCK waits for another process's migration run. */
export const MIGRATION_LOCK_WAIT_S = 30;

/** One migration file. */
export interface Migration {
  /** the number before the first `_` */
  version: number;
  /** the file name */
  name: string;
  statements: string[];
}

/**
 * The `migrations/` folder of this package: the nearest folder above this file holding a package.json (src/log in
 * development, dist/log when built; the Docker image must copy `migrations/` beside `dist/`).
 */
export function defaultMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above src/log: cannot find migrations/');
    dir = up;
  }
  return join(dir, 'migrations');
}

/**
 * Splits a migration into statements: whole-line `--` comments are dropped, a statement ends with `;` at the end
 * of a line. (No procedures or strings spanning `;\n` in our migrations, so no SQL parser is needed.)
 */
export function splitStatements(sql: string): string[] {
  const lines = sql.split(/\r?\n/).filter((l) => !l.trim().startsWith('--'));
  return lines
    .join('\n')
    .split(/;[ \t]*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * Reads `NNN_*.sql` files of a folder, sorted by version.
 * @throws when two files share a version, or the folder cannot be read
 */
export function loadMigrations(dir: string): Migration[] {
  const out: Migration[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^(\d+)_[\w.-]+\.sql$/.exec(name);
    if (!m) continue;
    out.push({ version: Number(m[1]), name, statements: splitStatements(readFileSync(join(dir, name), 'utf8')) });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.version === out[i - 1]!.version) throw new Error(`two migrations numbered ${out[i]!.version}: ${out[i - 1]!.name}, ${out[i]!.name}`);
  }
  return out;
}

/**
 * Applies the migrations `schema_migrations` does not list, under the named lock.
 * @param conn a connection of its own (GET_LOCK belongs to the session that took it)
 * @returns the versions applied by this call ([] when the schema was current)
 * @throws when the lock is not granted within 30 s, or a statement fails (the lock is released either way)
 */
export async function runMigrations(conn: PoolConnection, migrations: Migration[]): Promise<number[]> {
  const [lock] = await conn.query<LockRow[]>('SELECT GET_LOCK(?, ?) AS got', [MIGRATION_LOCK, MIGRATION_LOCK_WAIT_S]);
  if (Number(lock[0]?.got) !== 1) throw new Error(`migration lock ${MIGRATION_LOCK} not granted within ${MIGRATION_LOCK_WAIT_S} s`);
  try {
    await conn.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(191) NOT NULL, ' +
        'applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci',
    );
    const [done] = await conn.query<VersionRow[]>('SELECT version FROM schema_migrations');
    const applied = new Set(done.map((r) => Number(r.version)));
    const ran: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      for (const statement of m.statements) await conn.query(statement);
      await conn.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date()]);
      ran.push(m.version);
    }
    return ran;
  } finally {
    await conn.query('SELECT RELEASE_LOCK(?)', [MIGRATION_LOCK]).catch(() => undefined);
  }
}

interface LockRow extends RowDataPacket {
  got: number | null;
}
interface VersionRow extends RowDataPacket {
  version: number;
}
