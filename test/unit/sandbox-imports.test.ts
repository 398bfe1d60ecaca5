import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The local system's modules form layers: scenarios register in `scenarios/index.ts` and never
 * import it back, and nothing under `infra-scripts/` reaches up into `bench/` or `test/` (the
 * benches and tests import it, not the reverse).
 */
const root = path.resolve(__dirname, '../..');
const files = execFileSync('git', ['ls-files', '-z', '--', 'infra-scripts/**.ts'], {
  cwd: root,
  encoding: 'utf8',
})
  .split('\0')
  .filter((f) => f.endsWith('.ts'));
const importRe = /^\s*(?:import|export)\b[^'";]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm;

/** The repository files a module imports (relative specifiers only), as repo-relative paths. */
function imports(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(importRe)]
    .map((m) => m[1] ?? m[2]!)
    .filter((s) => s.startsWith('.'))
    .map((s) => {
      const base = path.join(path.dirname(file), s);
      const found = [`${base}.ts`, path.join(base, 'index.ts'), base].find((f) =>
        existsSync(path.join(root, f)),
      );
      return found ?? base;
    });
}

const graph = new Map(files.map((f) => [f, imports(f)]));

test('nothing under infra-scripts imports bench/ or test/', () => {
  const upward = [...graph].flatMap(([f, deps]) =>
    deps.filter((d) => /^(bench|test)\//.test(d)).map((d) => `${f} → ${d}`),
  );
  expect(upward).toEqual([]);
});

test('the modules of infra-scripts/local import each other without a cycle', () => {
  const local = (f: string) => f.startsWith('infra-scripts/local/');
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'visiting');
    for (const d of graph.get(f) ?? []) if (local(d)) visit(d, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files.filter(local)) visit(f, []);
  expect(cycles).toEqual([]);
});
