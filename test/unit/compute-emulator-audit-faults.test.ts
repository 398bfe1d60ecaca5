import { faultyAudit } from '../../infra-scripts/local/compute-emulator/audit-faults';
import type { LogEntry } from '../../infra-scripts/local/compute-emulator/audit-log';

const entry = (op: string, phase: 'first' | 'last' | 'both', n: number): LogEntry => ({
  insertId: `${op}-${phase}-${n}`,
  operation: {
    id: op,
    ...(phase !== 'last' ? { first: true } : {}),
    ...(phase !== 'first' ? { last: true } : {}),
  },
});

/** Writes first/last pairs (and a system event) in order, as the emitter does, one at a time. */
async function run(faults: Parameters<typeof faultyAudit>[1], pairs = 20): Promise<string[]> {
  const got: string[] = [];
  const w = faultyAudit(async (e) => void got.push(String(e.insertId)), faults);
  for (let i = 0; i < pairs; i++) {
    await w.write(entry(`op${i}`, 'first', i));
    await w.write(entry(`op${i}`, 'last', i));
    await w.write(entry(`sys${i}`, 'both', i));
  }
  await w.flush();
  return got;
}

test('without faults every entry arrives once, in order', async () => {
  const got = await run({});
  expect(got).toHaveLength(60);
  expect(got.slice(0, 3)).toEqual(['op0-first-0', 'op0-last-0', 'sys0-both-0']);
});

test('reordering delivers some lasts before their firsts; nothing is lost', async () => {
  const got = await run({ reorder: 0.5, seed: 7 });
  expect(new Set(got).size).toBe(60);
  const swapped = got.filter(
    (id, i) => id.includes('-last-') && got.indexOf(id.replace('last', 'first')) > i,
  );
  expect(swapped.length).toBeGreaterThan(0);
  expect(swapped.length).toBeLessThan(20);
  // System events (first and last at once) are never held.
  expect(got.filter((id) => id.startsWith('sys')).length).toBe(20);
});

test('duplicates repeat some entries; the same seed gives the same deliveries', async () => {
  const a = await run({ duplicate: 0.3, reorder: 0.3, seed: 42 });
  const b = await run({ duplicate: 0.3, reorder: 0.3, seed: 42 });
  const other = await run({ duplicate: 0.3, reorder: 0.3, seed: 43 });
  expect(a).toEqual(b);
  expect(a).not.toEqual(other);
  expect(a.length).toBeGreaterThan(60);
  expect(new Set(a).size).toBe(60);
});

test('delay holds deliveries back; a held first is released after holdMs if its last never comes', async () => {
  const got: string[] = [];
  const w = faultyAudit(async (e) => void got.push(String(e.insertId)), {
    reorder: 1,
    holdMs: 50,
    delayMs: 20,
  });
  const started = Date.now();
  await w.write(entry('lonely', 'first', 0));
  expect(got).toEqual([]);
  await new Promise((r) => setTimeout(r, 150));
  expect(got).toEqual(['lonely-first-0']);
  await w.write(entry('x', 'both', 1));
  await w.flush();
  expect(got).toEqual(['lonely-first-0', 'x-both-1']);
  expect(Date.now() - started).toBeGreaterThanOrEqual(50);
});

test("a delayed entry holds back no later one: delays do not add up as a queue's would", async () => {
  const got: string[] = [];
  const w = faultyAudit(async (e) => void got.push(String(e.insertId)), { delayMs: 300, seed: 5 });
  const started = Date.now();
  for (let i = 0; i < 10; i++) await w.write(entry(`s${i}`, 'both', i));
  // Ten delays of up to 300 ms each, all on their way at once.
  expect(Date.now() - started).toBeLessThan(100);
  await w.flush();
  expect(Date.now() - started).toBeLessThan(600);
  expect(new Set(got).size).toBe(10);
});
