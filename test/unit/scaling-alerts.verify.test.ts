import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Autoscaler, AutoscalingPolicy } from '../../shared/gcp/autoscaler-schema';
import type { AutoscalersPort } from '../../shared/gcp/autoscalers';
import { applyMergePatch } from '../../shared/gcp/merge-patch';
import { createLogger } from '../../shared/logging';
import { actOnAutoscaler, type ActDeps } from '../../shared/scaling-alerts/act';
import type { Incident } from '../../shared/scaling-alerts/notification';
import { planIncident } from '../../shared/scaling-alerts/plan';
import { parseRuleFile, type Tier } from '../../shared/scaling-alerts/rules';
import type { AutoscalerState, StateStore, StoredState } from '../../shared/scaling-alerts/state';

/**
 * The read-back after a floor schedule is written, through act.ts's loop with the real planner, an
 * in-memory record and an in-memory Compute that reports each schedule ACTIVE, or never.
 */

const examplePath = path.join(__dirname, '../../infra-scripts/config/scaling-rules.example.json');
const parsed = parseRuleFile(JSON.parse(readFileSync(examplePath, 'utf8')));
if (!parsed.ok) throw new Error(parsed.reason);
const rules = parsed.rules;
const tier: Tier = { ...rules.tiers.haproxy!, cooldownSec: 0, maxChangesPerHour: 100 };
const ref = { project: 'p', zone: 'us-central1-b', name: 'ilb-haproxy' };
const T0 = Date.parse('2026-11-26T10:00:30Z');

function world(gce: 'active' | 'never') {
  let policy: AutoscalingPolicy = { minNumReplicas: 2, maxNumReplicas: 10, mode: 'ON' };
  let rec: StoredState | null = null;
  const events: string[] = [];
  const current = (): Autoscaler => ({
    name: 'ilb-haproxy',
    autoscalingPolicy: policy,
    scalingScheduleStatus: Object.fromEntries(
      Object.keys(policy.scalingSchedules ?? {}).map((n) => [
        n,
        { state: gce === 'active' ? 'ACTIVE' : 'OBSOLETE' },
      ]),
    ),
  });
  const autoscalers: AutoscalersPort & { reads: number } = {
    reads: 0,
    get: () => {
      autoscalers.reads++;
      return Promise.resolve(current());
    },
    ownerLabels: () => Promise.resolve({}),
    apply: (_ref, _cur, patch) => {
      events.push(`patch ${JSON.stringify(Object.keys(patch.autoscalingPolicy))}`);
      policy = applyMergePatch(policy, patch.autoscalingPolicy);
      return Promise.resolve({ operation: `op-${events.length}`, method: 'patch' });
    },
  };
  const state: StateStore & { record: () => AutoscalerState | undefined } = {
    record: () => rec?.value ?? undefined,
    get: () => Promise.resolve(rec),
    cas: (_k, value, at) => {
      if ((rec?.index ?? 0) !== at) return Promise.resolve(false);
      events.push(`record ${JSON.stringify(value.original)}`);
      rec = { value, index: (rec?.index ?? 0) + 1 };
      return Promise.resolve(true);
    },
    remove: () => Promise.resolve(false),
  };
  const deps: ActDeps = {
    rules,
    autoscalers,
    state,
    logger: createLogger({ name: 'verify-test', level: 'silent' }),
    clock: () => T0,
    maxAttempts: 3,
    retryDelayMs: 1,
    scheduleCheck: { boundMs: 30, intervalMs: 10 },
  };
  const incident = (s: 'open' | 'closed'): Incident => ({
    id: 'a',
    state: s,
    cancelled: false,
    policyName: 'p',
    userLabels: {},
    metricLabels: {},
    resourceLabels: {},
    startedAt: T0,
    time: T0,
  });
  const deliver = (s: 'open' | 'closed') =>
    actOnAutoscaler(deps, {
      ref,
      name: 'ilb-haproxy',
      tier: 'haproxy',
      key: 'k',
      dryRun: false,
      missing: 'refused',
      message: 'test',
      fields: {},
      plan: (input) =>
        planIncident(
          incident(s),
          {
            rule: 'r',
            tierName: 'haproxy',
            tier,
            change: { type: 'raise-min', by: 2 },
            leaseSec: 600,
            autoscalers: [ref],
          },
          { rules, tierName: 'haproxy', tier, ref, ...input },
        ),
    });
  return { deliver, events, autoscalers, state, policy: () => policy };
}

test('a schedule read back ACTIVE: no fallback, minNumReplicas untouched', async () => {
  const w = world('active');
  const r = await w.deliver('open');
  expect(r.outcome).toMatchObject({ decision: 'applied', reason: 'escalate' });
  expect(w.autoscalers.reads).toBe(2); // the plan's read and one read-back
  expect(w.policy().minNumReplicas).toBe(2);
  expect(w.state.record()?.original).toEqual({});
});

test('a schedule never ACTIVE within the bound: minNumReplicas raised, recorded before the patch, once; closed reverts it', async () => {
  const w = world('never');
  const r = await w.deliver('open');
  expect(r.outcome).toMatchObject({ decision: 'applied', reason: 'fallback' });
  expect(w.policy().minNumReplicas).toBe(4);
  expect(w.events).toEqual([
    'record {}',
    'patch ["scalingSchedules"]',
    'record {"minNumReplicas":2}',
    'patch ["minNumReplicas"]',
  ]);
  // Redelivered: nothing more to do, nothing sent.
  expect((await w.deliver('open')).outcome).toMatchObject({ decision: 'noop', reason: 'lease-current' });
  expect(w.events).toHaveLength(4);

  const closed = await w.deliver('closed');
  expect(closed.outcome).toMatchObject({ decision: 'applied', reason: 'revert' });
  expect(w.policy().minNumReplicas).toBe(2);
  expect(w.policy().scalingSchedules).toEqual({});
  expect(w.state.record()?.original).toEqual({});
});
