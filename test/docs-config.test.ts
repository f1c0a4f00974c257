/**
 * docs/configuration.md is the user's contract: its variable tables must list exactly the variables the
 * configuration schema reads, each with the default the schema applies, so the page cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES, defaultOf } from '../src/config.js';

const page = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
/** `| `NAME` | default | meaning |` rows of the variable tables, in page order. */
const rows = [...page.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/gm)].map((m) => ({ name: m[1]!, cell: m[2]!.trim() }));

/** The default a cell states: the first backticked value, or null for "(unset…)". */
function stated(cell: string): string | null {
  if (cell.startsWith('(unset')) return null;
  const m = /^`([^`]*)`/.exec(cell);
  if (!m) throw new Error(`default cell neither "(unset…)" nor a backticked value: ${cell}`);
  return m[1]!;
}

describe('docs/configuration.md', () => {
  it('lists every variable the configuration reads, once, and nothing else', () => {
    expect(rows.map((r) => r.name).sort()).toEqual([...ENV_NAMES].sort());
  });

  it('states each default as the schema applies it', () => {
    for (const { name, cell } of rows) {
      const actual = defaultOf(name);
      const shown = actual === undefined ? null : Array.isArray(actual) ? actual.join(',') : String(actual);
      expect(stated(cell), name).toBe(shown);
    }
  });

  it('the reserved names are not read yet (a variable that starts being read must move into a table)', () => {
    const reserved = /## Not read yet\n\n([\s\S]*?)\n\n##/.exec(page)?.[1] ?? '';
    for (const name of reserved.match(/`[A-Z][A-Z0-9_]*`/g) ?? []) expect(ENV_NAMES).not.toContain(name.slice(1, -1));
  });
});
