// Runs every compiled benchmark (dist/bench/*.bench.js) one after another and prints their figures.
// Arguments: names to pick benches by, and options (e.g. --smoke) passed to each.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const options = process.argv.slice(2).filter((a) => a.startsWith('--'));
const benches = readdirSync(__dirname)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => only.length === 0 || only.some((name) => f.includes(name)))
  .sort();

let failed = 0;
for (const file of benches) {
  process.stdout.write(`\n=== ${file.replace(/\.bench\.js$/, '')} ===\n`);
  const result = spawnSync(process.execPath, [path.join(__dirname, file), ...options], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    process.stdout.write(`!!! ${file} exited with ${result.status ?? result.signal}\n`);
  }
}
process.stdout.write(`\n${benches.length - failed} benchmarks ran, ${failed} failed\n`);
process.exitCode = failed ? 1 : 0;
