/**
 * The event-latency bench in smoke mode (one sandbox, one preemption, one deletion): every stage of
 * the event path happened, in an order that is possible.
 */
import { z } from 'zod';
import { stages } from '../../bench/lib/event-path';
import { expectMeasured, runSmoke } from './support';

const figuresSchema = z.object({
  trials: z.array(
    z.object({
      kind: z.enum(['preemption', 'deletion']),
      instance: z.string(),
      instanceId: z.string(),
      stages: z.record(z.string(), z.number()),
      detail: z.array(z.string()),
    }),
  ),
  retried: z.record(z.string(), z.number().int()),
  consulDefaults: z.object({
    windowSec: z.number(),
    observedMs: z.number(),
    inCatalog: z.boolean(),
    member: z.string(),
  }),
});

it('sees every stage of a preemption and a deletion happen', async () => {
  const f = await runSmoke('event-latency', figuresSchema);
  expect(f.trials.map((t) => t.kind).sort()).toEqual(['deletion', 'preemption']);
  for (const trial of f.trials) {
    const at = trial.stages;
    const missing = stages.filter((s) => at[s] === undefined);
    expect({ trial: `${trial.kind} ${trial.instance}`, missing }).toEqual({
      trial: `${trial.kind} ${trial.instance}`,
      missing: [],
    });
    expectMeasured(
      stages.map((s) => at[s]),
      `${trial.kind} stages`,
    );
    expect(at.published!).toBeLessThanOrEqual(at['pulled by a subscriber']!);
    expect(at['function started']!).toBeLessThanOrEqual(at['function done']!);
    expect(at['first out of catalog']!).toBeLessThanOrEqual(at['out of catalog']!);
    expect(at['not alive in members']!).toBeLessThanOrEqual(at['gone from members']!);
  }
  for (const count of Object.values(f.retried)) expect(count).toBeGreaterThan(0);
  expect(f.consulDefaults.observedMs).toBeGreaterThanOrEqual(f.consulDefaults.windowSec * 1000);
}, 240_000);
