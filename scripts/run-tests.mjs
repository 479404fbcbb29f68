// Runs every test file named in scripts/test-files.txt with node:test through tsx. Node 20 has no
// test globs, so the list is explicit; a *.test.ts file under test/ that is not listed is an
// error, so that nothing is silently left out.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const listed = readFileSync(join(root, 'scripts', 'test-files.txt'), 'utf8')
  .split('\n')
  .map((line) => line.replace(/#.*/, '').trim())
  .filter(Boolean);

const found = [];
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.name.endsWith('.test.ts')) found.push(relative(root, path));
  }
};
walk(join(root, 'test'));
const unlisted = found.filter((f) => !listed.includes(f));
const missing = listed.filter((f) => !found.includes(f));
if (unlisted.length || missing.length) {
  for (const f of unlisted) console.error(`run-tests: ${f} is not in scripts/test-files.txt`);
  for (const f of missing) console.error(`run-tests: ${f} is listed but does not exist`);
  process.exit(1);
}

const args = [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  ...process.argv.slice(2),
  ...listed,
];
const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
