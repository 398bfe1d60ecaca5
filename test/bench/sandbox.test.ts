/** The sandbox bench in smoke mode (one start-up): every phase timed, figures that are possible. */
import { z } from 'zod';
import { expectMeasured, runSmoke } from './support';

const figuresSchema = z.object({
  startupMs: z.number(),
  phases: z.array(z.object({ phase: z.string(), atMs: z.number() })),
  processes: z.number().int(),
  rssMiB: z.number(),
  listManagedInstances: z.object({
    calls: z.number().int(),
    p50Ms: z.number().nullable(),
    p95Ms: z.number().nullable(),
  }),
  instanceBootMs: z.number(),
  instanceDeleteMs: z.number(),
  stopMs: z.number(),
  startups: z.object({
    runs: z.array(
      z.object({ ms: z.number(), withoutIdentity: z.array(z.string()), repaired: z.array(z.string()) }),
    ),
    minMs: z.number(),
    medianMs: z.number(),
    maxMs: z.number(),
  }),
});

it('times the start-up, an instance boot and delete, and the client calls', async () => {
  const f = await runSmoke('sandbox', figuresSchema);
  expectMeasured([f.startupMs, f.instanceBootMs, f.instanceDeleteMs, f.stopMs], 'durations');
  expect(f.startupMs).toBeGreaterThan(0);
  // Phases in the order they happened, all within the start-up.
  expect(f.phases.length).toBeGreaterThan(0);
  const at = f.phases.map((p) => p.atMs);
  expect(at).toEqual([...at].sort((a, b) => a - b));
  expect(at[at.length - 1]!).toBeLessThanOrEqual(f.startupMs);
  // Consul servers, instances, emulators: many processes, each with some memory.
  expect(f.processes).toBeGreaterThan(5);
  expect(f.rssMiB).toBeGreaterThan(f.processes);
  const calls = f.listManagedInstances;
  expect(calls.calls).toBeGreaterThan(0);
  expectMeasured([calls.p50Ms, calls.p95Ms], 'listManagedInstances');
  expect(calls.p50Ms!).toBeLessThanOrEqual(calls.p95Ms!);
  // The first start-up is one of the runs.
  expect(f.startups.runs[0]!.ms).toBe(f.startupMs);
  expect(f.startups.minMs).toBeLessThanOrEqual(f.startups.medianMs);
  expect(f.startups.medianMs).toBeLessThanOrEqual(f.startups.maxMs);
}, 240_000);
