/** The instanceEvents bench in smoke mode: every event handled, every node gone, figures that add up. */
import { z } from 'zod';
import { expectMeasured, runSmoke } from './support';

const num = z.number().nullable();
const figuresSchema = z.object({
  nodes: z.number().int().positive(),
  sequential: z.object({
    events: z.number().int().positive(),
    nodesBefore: z.number().int(),
    goneSamples: z.number().int(),
    goneP50Ms: num,
    goneP99Ms: num,
    handledSamples: z.number().int(),
    handledP50Ms: num,
    handledP99Ms: num,
  }),
  throughput: z.array(
    z.object({
      inFlight: z.number().int().positive(),
      events: z.number().int().positive(),
      nodesBefore: z.number().int(),
      goneSamples: z.number().int(),
      seconds: z.number(),
      eventsPerSec: z.number(),
      cpuMsPerEvent: z.number(),
      goneP50Ms: num,
      goneP99Ms: num,
      nodesLeft: z.number().int(),
    }),
  ),
  coldStartsMs: z.array(z.number()),
});

it('measures every event it sends, one after another and in flight', async () => {
  const f = await runSmoke('instance-events', figuresSchema);
  // The catalog holds the nodes and the Consul server itself.
  expect(f.sequential.nodesBefore).toBe(f.nodes + 1);
  expect(f.sequential.goneSamples).toBe(f.sequential.events);
  expect(f.sequential.handledSamples).toBe(f.sequential.events);
  expectMeasured([f.sequential.goneP50Ms, f.sequential.handledP50Ms], 'sequential p50');
  expect(f.sequential.goneP50Ms!).toBeLessThanOrEqual(f.sequential.goneP99Ms!);
  // A node is gone before its event is handled (force-leave comes after the delete).
  expect(f.sequential.goneP99Ms!).toBeLessThanOrEqual(f.sequential.handledP99Ms!);
  expect(f.throughput.length).toBeGreaterThan(0);
  for (const phase of f.throughput) {
    expect(phase.nodesBefore).toBe(f.nodes + 1);
    expect(phase.events).toBe(f.nodes);
    expect(phase.goneSamples).toBe(phase.events);
    expect(phase.nodesLeft).toBe(1);
    expectMeasured([phase.seconds, phase.cpuMsPerEvent, phase.goneP50Ms, phase.goneP99Ms], 'throughput');
    expect(phase.eventsPerSec).toBeCloseTo(phase.events / phase.seconds, 6);
    expect(phase.goneP50Ms!).toBeLessThanOrEqual(phase.goneP99Ms!);
  }
  expect(f.coldStartsMs.length).toBeGreaterThan(0);
  expectMeasured(f.coldStartsMs, 'cold starts');
}, 180_000);
