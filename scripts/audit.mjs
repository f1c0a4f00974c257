#!/usr/bin/env node
/**
 * `npm run audit`: the dependency check CI runs. `npm audit` against the registry; fails only on a high or
 * critical advisory whose fix installs on Node 20 (the fixed version's `engines` accept it); lists every other
 * advisory. When the registry does not answer audits (a mirror or proxy without the endpoint), says so and passes:
 * an unreachable audit service must not block a release, and the note in the CI log says it was not checked.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import semver from 'semver';

const NODE_MAJOR = 20;

function run(args) {
  const r = spawnSync('npm', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// AUDIT_REPORT_FILE: a saved `npm audit --json` report to judge instead (an offline mirror, or checking this script).
const audit = process.env.AUDIT_REPORT_FILE
  ? { stdout: readFileSync(process.env.AUDIT_REPORT_FILE, 'utf8'), stderr: '' }
  : run(['audit', '--json', '--omit=dev']);
let report;
try {
  report = JSON.parse(audit.stdout);
} catch {
  report = null;
}
if (!report || report.error || !report.vulnerabilities) {
  const why = report?.error?.summary || report?.message || audit.stderr.split('\n').find((l) => l.includes('error')) || 'no answer';
  console.log(`npm audit: the registry did not answer the audit request (${why.trim()}); dependencies NOT checked this run.`);
  process.exit(0);
}

/** Whether `name@version` declares an engines.node range that Node 20 satisfies (no range: yes). */
function acceptsNode20(name, version) {
  try {
    const out = execFileSync('npm', ['view', `${name}@${version}`, 'engines.node', '--json'], { encoding: 'utf8' }).trim();
    if (!out) return true;
    return semver.satisfies(`${NODE_MAJOR}.19.0`, JSON.parse(out));
  } catch {
    return true;
  }
}

const blocking = [];
const listed = [];
for (const [name, v] of Object.entries(report.vulnerabilities)) {
  const severe = v.severity === 'high' || v.severity === 'critical';
  const fix = v.fixAvailable;
  let fixable = false;
  let fixText = 'no fix';
  if (fix === true) {
    fixable = true;
    fixText = 'fix within the pinned range (npm audit fix)';
  } else if (fix && typeof fix === 'object') {
    fixable = acceptsNode20(fix.name, fix.version);
    fixText = `fix: ${fix.name}@${fix.version}${fix.isSemVerMajor ? ' (major)' : ''}${fixable ? '' : ' (needs a newer Node than 20)'}`;
  }
  const line = `${v.severity.padEnd(8)} ${name} (${v.range}) — ${fixText}`;
  (severe && fixable ? blocking : listed).push(line);
}
for (const line of listed) console.log(`npm audit: listed: ${line}`);
if (blocking.length > 0) {
  console.error(`npm audit: high/critical advisories with a fix that installs on Node ${NODE_MAJOR}:`);
  for (const line of blocking) console.error(`  ${line}`);
  process.exit(1);
}
console.log(`npm audit: ${listed.length} advisories listed, none high/critical with a Node ${NODE_MAJOR} fix.`);
