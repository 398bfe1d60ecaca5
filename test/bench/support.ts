/**
 * Runs one compiled bench (dist/bench, so `npm run build` first, as `npm test` does) with `--smoke`
 * and hands back the figures of its last line (bench/lib/figures.ts), validated by `schema`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { runNode } from '../../bench/lib/child';
import { readFigures } from '../../bench/lib/figures';

const root = path.resolve(__dirname, '../..');

export async function runSmoke<T>(bench: string, schema: z.ZodType<T>): Promise<T> {
  const script = path.join(root, 'dist', 'bench', `${bench}.bench.js`);
  if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build first`);
  const { code, stdout, stderr } = await runNode([script, '--smoke'], { cwd: root });
  if (code !== 0) throw new Error(`${bench} exited with ${code}:\n${stderr.slice(-4000)}`);
  const figures = readFigures(stdout);
  if (figures === undefined) throw new Error(`${bench} printed no figures line:\n${stdout.slice(-2000)}`);
  return schema.parse(figures);
}

/** A duration that was measured: a finite number of ms, not negative (null: the stage never happened). */
export function expectMeasured(values: readonly (number | null | undefined)[], what: string): void {
  for (const v of values) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new Error(`${what}: ${JSON.stringify(values)} holds an impossible duration (${String(v)})`);
  }
}

export const sum = (values: Iterable<number>): number => [...values].reduce((a, b) => a + b, 0);
