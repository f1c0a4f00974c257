/**
 * The README is a newcomer's page (under 10 KB) that links into docs/: every relative link and #anchor in
 * README.md, SECURITY.md and docs/*.md must resolve, and the README's quick start and benchmark must name npm
 * scripts that exist. Anchors are GitHub's heading slugs.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FENCED, anchors } from './helpers/markdown-anchors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PAGES = ['README.md', 'SECURITY.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (page: string) => readFileSync(join(ROOT, page), 'utf8');


/** The page with fenced code blocks (kept as blank lines) and inline code removed: there `[x](y)` is no link. */
function prose(text: string): string {
  return text.replace(FENCED, (block) => block.replace(/[^\n]/g, '')).replace(/`[^`\n]*`/g, '');
}


/** `[text](target)` links of a page that point inside the repository (no scheme), with their line. */
function localLinks(page: string): Array<{ target: string; line: number }> {
  const text = prose(read(page));
  const links: Array<{ target: string; line: number }> = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    links.push({ target, line: text.slice(0, m.index).split('\n').length });
  }
  return links;
}

describe('README.md and docs/', () => {
  it('the README stays a newcomer page: under 10 KB', () => {
    expect(statSync(join(ROOT, 'README.md')).size).toBeLessThan(10 * 1024);
  });

  it('has local links on every page checked (the link check sees them)', () => {
    expect(localLinks('README.md').length).toBeGreaterThan(10);
  });

  it.each(PAGES)('%s: every relative link and #anchor resolves', (page) => {
    const broken: string[] = [];
    for (const { target, line } of localLinks(page)) {
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const file = path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), decodeURI(path));
      if (!existsSync(file)) {
        broken.push(`${page}:${line} ${target}: no ${relative(ROOT, file)}`);
        continue;
      }
      if (anchor !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(decodeURIComponent(anchor))) {
        broken.push(`${page}:${line} ${target}: no heading #${anchor} in ${relative(ROOT, file)}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("the README's quick start and benchmark name npm scripts that exist", () => {
    const readme = read('README.md');
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const quick = /## Quick start\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
    expect(quick).toMatch(/^npm install && npm run demo\b/m);
    expect(quick).toMatch(/^npm test\b/m);
    const bench = /## Benchmark\n([\s\S]*?)(\n## |$)/.exec(readme)?.[1] ?? '';
    expect(bench).toContain('`npm run bench`');
    expect(bench).toMatch(/^\| store \| bare req\/s \|/m);
    for (const name of ['demo', 'test', 'bench']) expect(scripts).toContain(name);
  });
});
