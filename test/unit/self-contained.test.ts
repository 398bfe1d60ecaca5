import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A user's clone has nothing beside it and runs on another machine: no tracked file may read a
 * path outside the checkout (a relative path climbing above the repository root, such as the
 * `shared/` folder next to a developer's checkout) or name a build machine's absolute home.
 */
const root = path.resolve(__dirname, '../..');
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f !== '' && f !== 'package-lock.json' && !f.endsWith('go.sum'));

// Built from parts so this file does not match itself.
const machineRoots = ['work', 'root', 'home', 'Users'].map((d) => `/${d}/`);
const machinePath = new RegExp(`(?:^|[\\s'"\`(=:])(?:${machineRoots.join('|')})[\\w.-]`);
const climbing = /(?:\.\.\/)+[\w.-]+/g;

function escapesRoot(file: string, reference: string): boolean {
  return path.relative(root, path.resolve(root, path.dirname(file), reference)).startsWith('..');
}

function findings(file: string, text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    const at = `${file}:${i + 1}`;
    if (machinePath.test(line)) found.push(`${at}: absolute path of a build machine: ${line.trim()}`);
    for (const ref of line.match(climbing) ?? []) {
      if (escapesRoot(file, ref)) found.push(`${at}: reads outside the checkout: ${ref}`);
    }
  });
  return found;
}

test('no tracked file reads outside the checkout or names a build machine path', () => {
  const problems = tracked.flatMap((file) => {
    const text = readFileSync(path.join(root, file));
    if (text.includes(0)) return [];
    return findings(file, text.toString('utf8'));
  });
  expect(problems).toEqual([]);
});

test('the check sees a climbing path and a machine path', () => {
  const outside = ['..', '..', '..', 'shared', 'fixtures'].join('/');
  expect(findings('test/unit/x.test.ts', `const f = '${outside}';`)).toHaveLength(1);
  expect(findings('test/unit/x.test.ts', `import x from '../../shared/logging';`)).toEqual([]);
  expect(findings('README.md', `see ${'/wo'}rk/shared/ARCHITECTURE.md`)).toHaveLength(1);
});
