/**
 * The HAProxy membership bench in smoke mode: both ways take GETs and POSTs, every answered request
 * counts as answered, every stage is measured, and the counts add up.
 */
import { z } from 'zod';
import { expectMeasured, runSmoke, sum } from './support';

const loadSchema = z.object({
  ok: z.number().int(),
  failed: z.number().int(),
  reasons: z.record(z.string(), z.number().int()),
  latencySamples: z.number().int(),
  servedBy: z.record(z.string(), z.number().int()),
  answers: z.number().int(),
  p50Ms: z.number().nullable(),
  p99Ms: z.number().nullable(),
});
type LoadFigures = z.infer<typeof loadSchema>;
const delays = z.array(z.number().nullable());
const figuresSchema = z.object({
  args: z.object({ changes: z.number().int(), scale: z.number().int(), kills: z.number().int() }),
  ways: z.array(
    z.object({
      label: z.string(),
      get: loadSchema,
      post: loadSchema,
      stateDelays: delays,
      routedDelays: delays,
      scaleFailed: z.array(z.number().int()),
      killFailed: z.array(z.number().int()),
      killDelays: delays,
      unlistDelays: delays,
    }),
  ),
  serfDelays: delays,
});

function expectConsistent(load: LoadFigures, what: string): void {
  expect(load.ok).toBeGreaterThan(0);
  // An HTTP answer from a backend is never a failure: HAProxy's own errors are 5xx.
  const answeredButFailed = Object.keys(load.reasons).filter((r) => /^HTTP [1-4]\d\d$/.test(r));
  expect({ what, answeredButFailed }).toEqual({ what, answeredButFailed: [] });
  expect(sum(Object.values(load.reasons))).toBe(load.failed);
  expect(load.latencySamples).toBe(load.ok);
  expect(load.answers).toBe(load.ok);
  expect(sum(Object.values(load.servedBy))).toBe(load.ok);
  // Every answer names the backend that served it.
  expect(Object.keys(load.servedBy).filter((name) => !/^backend-\d+$/.test(name))).toEqual([]);
  expectMeasured([load.p50Ms, load.p99Ms], `${what} latency`);
}

it('counts what both HAProxies answered and measures every stage', async () => {
  const f = await runSmoke('haproxy-membership', figuresSchema);
  const { args } = f;
  expect(f.ways).toHaveLength(2);
  for (const way of f.ways) {
    expectConsistent(way.get, `${way.label} GET`);
    expectConsistent(way.post, `${way.label} POST`);
    expect(way.stateDelays).toHaveLength(args.changes);
    expectMeasured(way.stateDelays, `${way.label} change → runtime API`);
    expect(way.routedDelays).toHaveLength(args.changes);
    expect(way.killDelays).toHaveLength(args.kills);
    expectMeasured(way.killDelays, `${way.label} kill → not routed`);
    expectMeasured(way.unlistDelays, `${way.label} kill → unlisted`);
    // The failures of the scaling and kill stages are part of the whole run's.
    [way.get, way.post].forEach((load, k) => {
      expect(way.scaleFailed[k]!).toBeGreaterThanOrEqual(0);
      expect(way.killFailed[k]!).toBeGreaterThanOrEqual(0);
      expect(way.scaleFailed[k]! + way.killFailed[k]!).toBeLessThanOrEqual(load.failed);
    });
  }
  // The daemon follows every change in the traffic; the restarted tutorial HAProxy may not route a
  // returning backend before the next change (null: never within that change).
  const ours = f.ways[1]!;
  expectMeasured(ours.routedDelays, 'ours: change → requests follow');
  expect(f.serfDelays).toHaveLength(args.kills);
  expectMeasured(f.serfDelays, 'kill → serfHealth critical');
}, 240_000);
