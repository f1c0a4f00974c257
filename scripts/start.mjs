// `npm start`: runs dist/main.js, building first when dist/ is missing or older than any file in src/ (a fresh
// clone, or a `git pull`). In the Docker image there is no src/, so it just runs the build it ships with.
// `npm run worker` passes --role=worker: the same server as a background-only process (ROLE=worker).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const role = process.argv.find((a) => a.startsWith('--role='));
if (role) process.env.ROLE = role.slice('--role='.length);
const entry = join(root, 'dist', 'main.js');

function newestMtime(dir) {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    newest = Math.max(newest, name.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const src = join(root, 'src');
const stale = existsSync(src) && (!existsSync(entry) || newestMtime(src) > statSync(entry).mtimeMs);
if (stale) {
  console.error('[start] dist/ is missing or older than src/: building first');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
await import(entry);
