import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { Incident } from '../../shared/scaling-alerts/notification';
import {
  autoscalerSchema,
  type Autoscaler,
  type AutoscalingPolicy,
} from '../../shared/gcp/autoscaler-schema';
import { applyMergePatch } from '../../shared/gcp/merge-patch';
import { groupRefOf } from '../../shared/gcp/groups';
import { floorFor } from '../../shared/scaling-alerts/guardrails';
import { growthMetrics, type Growth } from '../../shared/scaling-alerts/growth';
import {
  metricTypes,
  planIncident,
  planSweep,
  requestIdFor,
  type Plan,
  type PlanContext,
} from '../../shared/scaling-alerts/plan';
import { scheduleName } from '../../shared/scaling-alerts/schedule';
import { autoscalerStateSchema, stateKey, type AutoscalerState } from '../../shared/scaling-alerts/state';
import {
  parseRuleFile,
  type Change,
  type RuleFile,
  type Target,
  type Tier,
} from '../../shared/scaling-alerts/rules';

const examplePath = path.join(__dirname, '../../infra-scripts/config/scaling-rules.example.json');
const example = (): RuleFile => {
  const r = parseRuleFile(JSON.parse(readFileSync(examplePath, 'utf8')));
  if (!r.ok) throw new Error(r.reason);
  return r.rules;
};
const rules = example();
const haproxy = rules.tiers.haproxy as Tier;
const ref = haproxy.autoscalers[0] as Tier['autoscalers'][number];
/** Cooldown and hourly limit out of the way, for tests about something else. */
const free: Tier = { ...haproxy, cooldownSec: 0, maxChangesPerHour: 1000 };

const T0 = Date.parse('2026-11-26T10:00:30Z');
const min = 60_000;
const uuidV5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const basePolicy = (): AutoscalingPolicy => ({
  minNumReplicas: 2,
  maxNumReplicas: 10,
  cpuUtilization: { utilizationTarget: 0.6, predictiveMethod: 'NONE' },
  mode: 'ON',
  scalingSchedules: {
    'weekday-mornings': {
      minRequiredReplicas: 3,
      schedule: '0 8 * * MON-FRI',
      durationSec: 7200,
      timeZone: 'Europe/Paris',
    },
  },
});

const incident = (id: string, state: 'open' | 'closed', time = T0): Incident => ({
  id,
  state,
  cancelled: false,
  policyName: 'p',
  userLabels: {},
  metricLabels: {},
  resourceLabels: { zone: 'us-central1-b' },
  startedAt: time,
  endedAt: state === 'closed' ? time : undefined,
  time,
});

const target = (change: Change, tier: Tier = free, leaseSec = 3600): Target => ({
  rule: 'test-rule',
  tierName: 'haproxy',
  tier,
  change,
  leaseSec,
  autoscalers: [ref],
});

/** An autoscaler and this function's record of it, changed only by what plans say. */
class World {
  policy: AutoscalingPolicy;
  state: AutoscalerState | null = null;
  plans: Plan[] = [];
  /** How GCE treats our schedules (whose start is always already past): active, or never. */
  gce: 'active' | 'never' = 'active';
  constructor(
    policy: AutoscalingPolicy = basePolicy(),
    public tier: Tier = free,
    public name = 'ilb-haproxy-us-central1-b',
  ) {
    this.policy = policy;
  }
  ctx(now: number, extra: Partial<PlanContext> = {}): PlanContext {
    const status = Object.fromEntries(
      Object.entries(this.policy.scalingSchedules ?? {}).map(([n, s]) => [
        n,
        { state: s.disabled ? 'DISABLED' : this.gce === 'active' ? 'ACTIVE' : 'OBSOLETE' },
      ]),
    );
    const autoscaler: Autoscaler = autoscalerSchema.parse({
      name: this.name,
      autoscalingPolicy: this.policy,
      scalingScheduleStatus: status,
    });
    return { rules, tierName: 'haproxy', tier: this.tier, ref, autoscaler, state: this.state, now, ...extra };
  }
  /** Times of the plans that escalated. */
  escalations: number[] = [];
  private take(plan: Plan, now: number): Plan {
    if (plan.state) this.state = plan.state;
    if (plan.patch) this.policy = applyMergePatch(this.policy, plan.patch.autoscalingPolicy);
    if (plan.decision === 'applied' && plan.reason.includes('escalate')) this.escalations.push(now);
    this.plans.push(plan);
    return plan;
  }
  notify(inc: Incident, change: Change, now = T0, leaseSec = 3600): Plan {
    return this.take(planIncident(inc, target(change, this.tier, leaseSec), this.ctx(now)), now);
  }
  sweep(now: number): Plan {
    return this.take(planSweep(this.ctx(now)), now);
  }
  ours(): Record<string, unknown> {
    return Object.fromEntries(
      Object.entries(this.policy.scalingSchedules ?? {}).filter(([n]) => n.startsWith(rules.schedulePrefix)),
    );
  }
  floor(): number {
    const s = Object.values(this.ours()) as { minRequiredReplicas: number }[];
    return Math.max(this.policy.minNumReplicas ?? 0, ...s.map((x) => x.minRequiredReplicas));
  }
}

const raise = (by: number): Change => ({ type: 'raise-min', by });

describe('floors are leases: one-time scaling schedules', () => {
  it('an open incident raises the floor with a schedule named after it, for the lease', () => {
    const w = new World();
    const plan = w.notify(incident('0.nl3v8fkx2a1q', 'open'), raise(2));
    const name = scheduleName('ilb-incident-', '0.nl3v8fkx2a1q');
    expect(name).toMatch(/^ilb-incident-0-nl3v8fkx2a1q-[0-9a-f]{8}$/);
    expect(plan).toMatchObject({ decision: 'applied', reason: 'escalate', incidentId: '0.nl3v8fkx2a1q' });
    expect(plan.patch).toEqual({
      name: 'ilb-haproxy-us-central1-b',
      autoscalingPolicy: {
        scalingSchedules: {
          [name]: {
            minRequiredReplicas: 4,
            // Once, at 10:00 UTC on 26 Nov 2026, for the lease: until 11:00:30.
            schedule: '0 10 26 11 * 2026',
            timeZone: 'Etc/UTC',
            durationSec: 3630,
            description: 'gce-ilb-orchestrator lease for incident 0.nl3v8fkx2a1q (rule test-rule)',
          },
        },
      },
    });
    expect(plan.requestId).toMatch(uuidV5);
    expect(plan.state?.leases['0.nl3v8fkx2a1q']).toMatchObject({ expiresAt: T0 + 3600_000, generation: 0 });
    expect(plan.metrics).toEqual([
      {
        type: metricTypes.decision,
        labels: expect.objectContaining({ decision: 'applied', tier: 'haproxy' }),
        value: 1,
      },
      { type: metricTypes.floor, labels: expect.any(Object), value: 4 },
      { type: metricTypes.leases, labels: expect.any(Object), value: 1 },
    ]);
    // Someone else's schedule is left alone.
    expect(w.policy.scalingSchedules?.['weekday-mornings']).toEqual(
      basePolicy().scalingSchedules?.['weekday-mornings'],
    );
  });

  it('the same notification twice acts once', () => {
    const w = new World();
    const first = w.notify(incident('a', 'open'), raise(2));
    const again = w.notify(incident('a', 'open'), raise(2), T0 + 5 * min);
    expect(again).toMatchObject({ decision: 'noop', reason: 'lease-current' });
    expect(again.patch).toBeUndefined();
    expect(again.state).toBeUndefined();
    // A replay of the first delivery sends the same request id, so Compute acts once.
    const replay = planIncident(incident('a', 'open'), target(raise(2)), { ...new World().ctx(T0) });
    expect(replay.requestId).toBe(first.requestId);
  });

  it('a later notification renews the lease once half of it has run, without counting as a change', () => {
    const w = new World();
    const first = w.notify(incident('a', 'open'), raise(2));
    const renewed = w.notify(incident('a', 'open'), raise(2), T0 + 40 * min);
    expect(renewed).toMatchObject({ decision: 'applied', reason: 'renew' });
    expect(renewed.requestId).not.toBe(first.requestId);
    expect(Object.values(w.ours())).toEqual([
      expect.objectContaining({ minRequiredReplicas: 4, schedule: '40 10 26 11 * 2026', durationSec: 3630 }),
    ]);
    expect(w.state?.leases.a).toMatchObject({ generation: 1, expiresAt: T0 + 100 * min });
    expect(w.state?.changes).toEqual([T0]);
  });

  it('a lease granted again after it expired acts again, under a new request id', () => {
    const w = new World();
    const first = w.notify(incident('a', 'open'), raise(2), T0, 600);
    w.sweep(T0 + 11 * min);
    const again = w.notify(incident('a', 'open'), raise(2), T0 + 12 * min, 600);
    expect(again).toMatchObject({ decision: 'applied', reason: 'escalate' });
    expect(again.requestId).toMatch(uuidV5);
    expect(again.requestId).not.toBe(first.requestId);
    expect(w.floor()).toBe(4);
  });

  it('closing removes the schedule and remembers the incident', () => {
    const w = new World();
    const open = w.notify(incident('a', 'open'), raise(2));
    const close = w.notify(incident('a', 'closed', T0 + 10 * min), raise(2), T0 + 10 * min);
    expect(close).toMatchObject({ decision: 'applied', reason: 'revert' });
    expect(close.patch?.autoscalingPolicy).toEqual({
      scalingSchedules: { [scheduleName('ilb-incident-', 'a')]: null },
    });
    expect(close.requestId).toMatch(uuidV5);
    expect(close.requestId).not.toBe(open.requestId);
    expect(w.policy).toEqual(basePolicy());
    expect(w.state).toMatchObject({ leases: {}, closed: { a: T0 + 10 * min } });
  });

  it('closed before open leaves no change behind', () => {
    const w = new World();
    w.notify(incident('a', 'closed', T0 + 10 * min), raise(2));
    const late = w.notify(incident('a', 'open'), raise(2));
    expect(late).toMatchObject({ decision: 'noop', reason: expect.stringMatching(/^closed-before-open/) });
    expect(w.policy).toEqual(basePolicy());
    expect(w.state?.leases).toEqual({});
  });

  it('incident ids named like Object properties are plain ids', () => {
    const w = new World();
    w.notify(incident('constructor', 'closed', T0 + min), raise(2));
    expect(w.state?.closed).toEqual({ constructor: T0 + min });
    w.notify(incident('constructor', 'open'), raise(2));
    expect(w.policy).toEqual(basePolicy());
    w.notify(incident('toString', 'open'), raise(2));
    expect(Object.keys(w.state?.leases ?? {})).toEqual(['toString']);
  });

  it('a cancelled incident counts as closed', () => {
    const w = new World();
    w.notify(incident('a', 'open'), raise(2));
    w.notify({ ...incident('a', 'closed', T0 + min), cancelled: true }, raise(2), T0 + min);
    expect(w.ours()).toEqual({});
  });

  it('the strongest floor holds; closing one incident leaves the others in force', () => {
    const w = new World();
    w.notify(incident('a', 'open'), raise(1));
    w.notify(incident('b', 'open'), raise(3));
    expect(w.floor()).toBe(5);
    expect(Object.keys(w.ours())).toHaveLength(2);
    const close = w.notify(incident('b', 'closed'), raise(3));
    expect(close.metrics.find((m) => m.type === metricTypes.floor)?.value).toBe(3);
    expect(w.floor()).toBe(3);
    expect(Object.keys(w.ours())).toEqual([scheduleName('ilb-incident-', 'a')]);
  });

  it('a lost close: the schedule ends on its own and the sweep removes it', () => {
    const w = new World();
    w.notify(incident('a', 'open'), raise(2), T0, 600);
    expect(w.sweep(T0 + 5 * min)).toMatchObject({ decision: 'noop', reason: 'in-force' });
    const sweep = w.sweep(T0 + 11 * min);
    expect(sweep).toMatchObject({ decision: 'applied', reason: 'revert' });
    expect(sweep.requestId).toMatch(uuidV5);
    expect(w.policy).toEqual(basePolicy());
    expect(w.state?.leases).toEqual({});
  });
});

describe('clamping', () => {
  const policy = (minNumReplicas: number, maxNumReplicas: number) => ({ minNumReplicas, maxNumReplicas });
  it.each([
    ['by 2 above the base', raise(2), policy(2, 10), 4],
    ['at most maxStep above the base', raise(10), policy(2, 10), 5],
    ['never beyond the tier ceiling', raise(3), policy(6, 10), 8],
    ['never beyond maxNumReplicas', raise(3), policy(5, 6), 6],
    ['at least the tier floor', { type: 'raise-min', to: 1 } as Change, policy(0, 10), 2],
    ['to an exact floor', { type: 'raise-min', to: 4 } as Change, policy(2, 10), 4],
  ])('raise-min: %s', (_what, change, p, floor) => {
    expect(floorFor(change as Extract<Change, { type: 'raise-min' }>, p, haproxy)).toBe(floor);
  });

  it('refuses a floor that would not be above the base, and records nothing', () => {
    const w = new World();
    const plan = w.notify(incident('a', 'open'), { type: 'raise-min', to: 2 });
    expect(plan).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/^not allowed: /),
    });
    expect(plan.state).toBeUndefined();
    expect(w.policy).toEqual(basePolicy());
  });

  it('never sets min above max, nor beyond the ceiling, whatever the rule asks', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 20 }),
        fc.nat({ max: 20 }),
        fc.oneof(
          fc.integer({ min: 1, max: 1000 }).map((by) => ({ type: 'raise-min' as const, by })),
          fc.integer({ min: 1, max: 1000 }).map((to) => ({ type: 'raise-min' as const, to })),
        ),
        (a, b, change) => {
          const p = { minNumReplicas: Math.min(a, b), maxNumReplicas: Math.max(a, b, 1) };
          const f = floorFor(change, p, haproxy);
          expect(f).toBeLessThanOrEqual(p.maxNumReplicas);
          expect(f).toBeLessThanOrEqual(haproxy.ceiling);
          expect(f).toBeLessThanOrEqual(p.minNumReplicas + haproxy.maxStep);
        },
      ),
    );
  });
});

describe('changes a schedule cannot express: recorded, held by the strongest, reverted', () => {
  it('CPU target: lowered within range and step, the lowest holds, the original returns', () => {
    const w = new World();
    w.notify(incident('a', 'open'), { type: 'cpu-target', target: 0.5 });
    expect(w.policy.cpuUtilization).toEqual({ utilizationTarget: 0.5, predictiveMethod: 'NONE' });
    expect(w.state?.original).toEqual({ cpuTarget: 0.6 });
    // 0.1 asked: the range floor is 0.4 and the step at most 30 % of 0.6, so 0.42.
    w.notify(incident('b', 'open'), { type: 'cpu-target', target: 0.1 });
    expect(w.policy.cpuUtilization?.utilizationTarget).toBe(0.42);
    w.notify(incident('b', 'closed'), { type: 'cpu-target', target: 0.1 });
    expect(w.policy.cpuUtilization?.utilizationTarget).toBe(0.5);
    const last = w.notify(incident('a', 'closed'), { type: 'cpu-target', target: 0.5 });
    expect(last.patch?.autoscalingPolicy).toEqual({ cpuUtilization: { utilizationTarget: 0.6 } });
    expect(w.policy).toEqual(basePolicy());
    expect(w.state?.original).toEqual({});
  });

  it('CPU target on an autoscaler that does not scale on CPU is refused', () => {
    const p = basePolicy();
    delete p.cpuUtilization;
    const w = new World(p);
    const plan = w.notify(incident('a', 'open'), { type: 'cpu-target', target: 0.5 });
    expect(plan).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/does not scale on CPU/),
    });
  });

  it('custom metric target: the whole array is sent with only that metric changed', () => {
    const backend: Tier = { ...(rules.tiers.backend as Tier), cooldownSec: 0 };
    const metric = 'custom.googleapis.com/ilb/backend/request_rate';
    const other = {
      metric: 'custom.googleapis.com/other',
      utilizationTarget: 5,
      utilizationTargetType: 'GAUGE',
    };
    const p: AutoscalingPolicy = {
      ...basePolicy(),
      customMetricUtilizations: [{ metric, utilizationTarget: 100, utilizationTargetType: 'GAUGE' }, other],
    };
    const w = new World(p, backend);
    const plan = w.notify(incident('a', 'open'), { type: 'custom-metric-target', metric, target: 10 });
    // Range 50–200, step 25 % of 100: 75.
    expect(plan.patch?.autoscalingPolicy).toEqual({
      customMetricUtilizations: [{ metric, utilizationTarget: 75, utilizationTargetType: 'GAUGE' }, other],
    });
    expect(w.state?.original).toEqual({ customTargets: { [metric]: 100 } });
    w.notify(incident('a', 'closed'), { type: 'custom-metric-target', metric, target: 10 });
    expect(w.policy).toEqual(p);
  });

  it('scaleInControl: tightened while held, removed again when it was absent', () => {
    const w = new World();
    const change: Change = { type: 'scale-in-control', maxScaledInReplicas: 0, timeWindowSec: 3600 };
    w.notify(incident('a', 'open'), change);
    // The tier allows windows up to 1800 s.
    expect(w.policy.scaleInControl).toEqual({ maxScaledInReplicas: { fixed: 0 }, timeWindowSec: 1800 });
    const close = w.notify(incident('a', 'closed'), change);
    expect(close.patch?.autoscalingPolicy).toEqual({ scaleInControl: null });
    expect(w.policy).toEqual(basePolicy());
  });

  it('scaleInControl: a percent original comes back exactly', () => {
    const p = {
      ...basePolicy(),
      scaleInControl: { maxScaledInReplicas: { percent: 10 }, timeWindowSec: 600 },
    };
    const w = new World(p);
    const change: Change = { type: 'scale-in-control', maxScaledInReplicas: 1, timeWindowSec: 900 };
    w.notify(incident('a', 'open'), change);
    expect(w.policy.scaleInControl).toEqual({ maxScaledInReplicas: { fixed: 1 }, timeWindowSec: 900 });
    w.notify(incident('a', 'closed'), change);
    expect(w.policy).toEqual(p);
  });

  it("scaleInControl: never looser than the operator's own setting", () => {
    const p = { ...basePolicy(), scaleInControl: { maxScaledInReplicas: { fixed: 0 }, timeWindowSec: 1200 } };
    const w = new World(p);
    const plan = w.notify(incident('a', 'open'), {
      type: 'scale-in-control',
      maxScaledInReplicas: 2,
      timeWindowSec: 600,
    });
    expect(plan).toMatchObject({ decision: 'noop' });
    expect(w.policy).toEqual(p);
  });

  it('mode: ONLY_SCALE_OUT while an incident is open, then the original', () => {
    const w = new World();
    const change: Change = { type: 'mode', mode: 'ONLY_SCALE_OUT' };
    w.notify(incident('a', 'open'), change);
    w.notify(incident('b', 'open'), change);
    expect(w.policy.mode).toBe('ONLY_SCALE_OUT');
    w.notify(incident('a', 'closed'), change);
    expect(w.policy.mode).toBe('ONLY_SCALE_OUT');
    w.notify(incident('b', 'closed'), change);
    expect(w.policy).toEqual(basePolicy());
  });

  it('mode: an autoscaler an operator turned OFF is left alone, and so is a tier that forbids it', () => {
    const off = new World({ ...basePolicy(), mode: 'OFF' });
    expect(off.notify(incident('a', 'open'), { type: 'mode', mode: 'ONLY_SCALE_OUT' })).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/OFF/),
    });
    const strict = new World(basePolicy(), { ...free, allowModeChange: false });
    expect(strict.notify(incident('a', 'open'), { type: 'mode', mode: 'ONLY_SCALE_OUT' })).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/allows no mode change/),
    });
  });

  it('the sweep reverts what an expired lease held', () => {
    const w = new World();
    w.notify(incident('a', 'open'), { type: 'mode', mode: 'ONLY_SCALE_OUT' }, T0, 900);
    w.notify(incident('b', 'open'), { type: 'cpu-target', target: 0.5 }, T0, 3600);
    const sweep = w.sweep(T0 + 16 * min);
    expect(sweep.patch?.autoscalingPolicy).toEqual({ mode: 'ON' });
    expect(w.policy.cpuUtilization?.utilizationTarget).toBe(0.5);
    expect(Object.keys(w.state?.leases ?? {})).toEqual(['b']);
  });
});

describe('guardrails', () => {
  it('refuses an autoscaler this deployment does not own, and records nothing', () => {
    const w = new World(basePolicy(), free, 'someone-elses-autoscaler');
    const plan = w.notify(incident('a', 'open'), raise(2));
    expect(plan).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/^not-owned/),
    });
    expect(plan.state).toBeUndefined();
    expect(plan.metrics).toEqual([
      expect.objectContaining({ labels: expect.objectContaining({ decision: 'refused' }) }),
    ]);
    expect(w.policy).toEqual(basePolicy());
    // The owner label is enough.
    const labelled = planIncident(incident('a', 'open'), target(raise(2)), {
      ...w.ctx(T0),
      ownerLabels: { 'managed-by': 'gce-ilb-orchestrator' },
    });
    expect(labelled.decision).toBe('applied');
  });

  it('cooldown: a second escalation waits, its lease is kept, and the sweep applies it later', () => {
    const w = new World(basePolicy(), haproxy);
    w.notify(incident('a', 'open'), raise(1));
    const b = w.notify(incident('b', 'open'), raise(3), T0 + min);
    expect(b).toMatchObject({ decision: 'refused', reason: expect.stringMatching(/^withheld: .*cooldown/) });
    expect(b.patch).toBeUndefined();
    expect(Object.keys(w.state?.leases ?? {})).toEqual(['a', 'b']);
    expect(w.floor()).toBe(3);
    expect(w.sweep(T0 + 4 * min).decision).toBe('refused');
    const later = w.sweep(T0 + 6 * min);
    expect(later).toMatchObject({ decision: 'applied', reason: 'escalate' });
    expect(w.floor()).toBe(5);
  });

  it('hourly limit: escalations stop at the limit, reverts never do', () => {
    const w = new World(basePolicy(), { ...free, maxChangesPerHour: 2 });
    w.notify(incident('a', 'open'), raise(1));
    w.notify(incident('b', 'open'), raise(2), T0 + min);
    const c = w.notify(incident('c', 'open'), raise(3), T0 + 2 * min);
    expect(c).toMatchObject({ decision: 'refused', reason: expect.stringMatching(/hourly limit/) });
    const close = w.notify(incident('b', 'closed'), raise(2), T0 + 3 * min);
    expect(close).toMatchObject({ decision: 'applied', reason: 'revert' });
    expect(w.floor()).toBe(3);
    // Once the first two changes are an hour old, c gets its turn (a's lease has expired by then).
    expect(w.sweep(T0 + 61 * min)).toMatchObject({ decision: 'applied', reason: 'escalate+revert' });
    expect(w.floor()).toBe(5);
    expect(Object.keys(w.state?.leases ?? {})).toEqual(['c']);
  });

  it("refuses a new floor when the autoscaler has GCE's 128 schedules", () => {
    const full = basePolicy();
    full.scalingSchedules = Object.fromEntries(
      Array.from({ length: 128 }, (_, i) => [
        `other-${i}`,
        { minRequiredReplicas: 1, schedule: '0 8 * * *', durationSec: 600 },
      ]),
    );
    const w = new World(full);
    const plan = w.notify(incident('a', 'open'), raise(2));
    expect(plan).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/128 scaling schedules/),
    });
    expect(plan.patch).toBeUndefined();
  });

  it('a closed incident is forgotten after the retention', () => {
    const w = new World();
    w.notify(incident('a', 'closed'), raise(2));
    w.notify(incident('b', 'open'), raise(2), T0 + 8 * 24 * 60 * min);
    expect(Object.keys(w.state?.closed ?? {})).toEqual([]);
  });
});

describe('identifiers', () => {
  it('each autoscaler has its own KV record', () => {
    expect(stateKey('gce-ilb-orchestrator/', ref)).toBe(
      'gce-ilb-orchestrator/scaling-alerts/autoscalers/projects/ilb-demo/zones/us-central1-b/autoscalers/ilb-haproxy-us-central1-b',
    );
  });

  it('request ids are name-based UUIDs: stable, distinct per name', () => {
    expect(requestIdFor('x')).toBe(requestIdFor('x'));
    expect(requestIdFor('x')).not.toBe(requestIdFor('y'));
    expect(requestIdFor('0.nl3v8fkx2a1q|open|0|zones/us-central1-b/autoscalers/a')).toMatch(uuidV5);
  });

  it('a KV record cannot smuggle __proto__ or path-like keys', () => {
    const lease = JSON.stringify({
      incidentId: 'a',
      rule: 'r',
      tier: 't',
      change: raise(1),
      grantedAt: 0,
      expiresAt: 1,
      generation: 0,
    });
    const parse = (text: string) => autoscalerStateSchema.safeParse(JSON.parse(text));
    expect(parse(`{"leases":{"a":${lease}}}`).success).toBe(true);
    expect(parse('{"closed":{"../x":1}}').success).toBe(false);
    for (const text of [
      `{"leases":{"__proto__":${lease}}}`,
      '{"original":{"customTargets":{"__proto__":1}}}',
    ]) {
      const r = parse(text);
      // Dropped, never turned into a prototype.
      const data = r.success ? r.data : undefined;
      expect(Object.getPrototypeOf(data?.leases)).toBe(Object.prototype);
      expect(Object.keys(data?.leases ?? { x: 1 })).toEqual([]);
      expect(Object.keys(data?.original.customTargets ?? {})).toEqual([]);
    }
  });

  it('schedule names are valid Compute names for any incident id, and distinct', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 128 }),
        fc.string({ minLength: 1, maxLength: 128 }),
        (a, b) => {
          const n = scheduleName('ilb-incident-', a);
          expect(n).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
          if (a !== b) expect(n).not.toBe(scheduleName('ilb-incident-', b));
        },
      ),
    );
  });
});

describe('several overlapping incidents on one autoscaler (property)', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const change: fc.Arbitrary<Change> = fc.oneof(
    fc.integer({ min: 1, max: 6 }).map((by) => ({ type: 'raise-min' as const, by })),
    fc.integer({ min: 1, max: 12 }).map((to) => ({ type: 'raise-min' as const, to })),
    fc.integer({ min: 20, max: 90 }).map((t) => ({ type: 'cpu-target' as const, target: t / 100 })),
    fc
      .tuple(fc.nat({ max: 3 }), fc.integer({ min: 60, max: 3600 }))
      .map(([n, w]) => ({ type: 'scale-in-control' as const, maxScaledInReplicas: n, timeWindowSec: w })),
    fc.constant({ type: 'mode' as const, mode: 'ONLY_SCALE_OUT' as const }),
  );
  // Each incident: its change, whether it opened, whether it closed (after opening, in time).
  const incidents = fc.uniqueArray(
    fc.record({ id: fc.constantFrom(...ids), change, opened: fc.boolean(), closed: fc.boolean() }),
    { selector: (i) => i.id, minLength: 1, maxLength: 5 },
  );
  const policy = fc
    .tuple(
      fc.nat({ max: 6 }),
      fc.integer({ min: 1, max: 12 }),
      fc.option(fc.constant({ maxScaledInReplicas: { percent: 20 }, timeWindowSec: 300 }), {
        nil: undefined,
      }),
    )
    .map(([a, b, scaleIn]): AutoscalingPolicy => ({
      ...basePolicy(),
      minNumReplicas: Math.min(a, b),
      maxNumReplicas: Math.max(a, b),
      ...(scaleIn ? { scaleInControl: scaleIn } : {}),
    }));
  type Event = { id: string; change: Change; state: 'open' | 'closed'; time: number };
  const timeline = (list: { id: string; change: Change; opened: boolean; closed: boolean }[]): Event[] =>
    list.flatMap((i, k) => [
      ...(i.opened
        ? [{ id: i.id, change: i.change, state: 'open' as const, time: T0 - 50 * min + k * min }]
        : []),
      ...(i.closed
        ? [{ id: i.id, change: i.change, state: 'closed' as const, time: T0 - 20 * min + k * min }]
        : []),
    ]);

  const check = (w: World) => {
    for (const s of Object.values(w.ours()) as { minRequiredReplicas: number }[]) {
      expect(s.minRequiredReplicas).toBeLessThanOrEqual(w.policy.maxNumReplicas ?? 0);
      expect(s.minRequiredReplicas).toBeLessThanOrEqual(free.ceiling);
    }
    expect(w.policy.minNumReplicas ?? 0).toBeLessThanOrEqual(w.policy.maxNumReplicas ?? 0);
  };
  const run = (initial: AutoscalingPolicy, events: Event[]) => {
    const w = new World(structuredClone(initial));
    for (const e of events) {
      w.notify(incident(e.id, e.state, e.time), e.change);
      check(w);
    }
    return w;
  };

  it('in any order, with duplicates, they end as processing them in time order does', () => {
    fc.assert(
      fc.property(
        policy,
        incidents,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        (initial, list, duplicates, noise) => {
          const events = timeline(list);
          fc.pre(events.length > 0);
          const inTime = [...events].sort((a, b) => a.time - b.time);
          const delivered = [...events, ...duplicates.map((d) => events[d % events.length] as Event)];
          const shuffled = delivered
            .map((e) => ({ e, k: noise.next().value as number }))
            .sort((x, y) => x.k - y.k)
            .map((x) => x.e);
          const expected = run(initial, inTime);
          const actual = run(initial, shuffled);
          expect(actual.policy).toEqual(expected.policy);
          expect(actual.state?.leases).toEqual(expected.state?.leases);
          expect(actual.state?.closed).toEqual(expected.state?.closed);
          // Open incidents are exactly those opened and never closed.
          expect(Object.keys(actual.state?.leases ?? {}).sort()).toEqual(
            list
              .filter((i) => i.opened && !i.closed)
              .filter(
                (i) =>
                  i.change.type !== 'raise-min' ||
                  floorFor(i.change, initial, free) > (initial.minNumReplicas ?? 0),
              )
              .map((i) => i.id)
              .sort(),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('once every incident is closed, in any order, the policy is what it was', () => {
    fc.assert(
      fc.property(
        policy,
        incidents,
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        (initial, list, noise) => {
          const events = timeline(list.map((i) => ({ ...i, closed: true })));
          const shuffled = events
            .map((e) => ({ e, k: noise.next().value as number }))
            .sort((x, y) => x.k - y.k)
            .map((x) => x.e);
          const w = run(initial, shuffled);
          expect(w.policy).toEqual(initial);
          expect(w.state?.original ?? {}).toEqual({});
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with real guardrails and time passing, limits hold at every step', () => {
    fc.assert(
      fc.property(
        policy,
        fc.array(
          fc.record({
            id: fc.constantFrom(...ids),
            change,
            state: fc.constantFrom('open' as const, 'closed' as const),
            dt: fc.nat({ max: 20 }),
          }),
          {
            maxLength: 20,
          },
        ),
        (initial, steps) => {
          const w = new World(structuredClone(initial), haproxy);
          let now = T0;
          for (const s of steps) {
            now += s.dt * min;
            w.notify(incident(s.id, s.state, now), s.change, now);
            if (s.dt % 3 === 0) w.sweep(now);
            check(w);
            // Escalations: never two within the cooldown, never more than the limit in an hour.
            const e = w.escalations;
            for (let i = 1; i < e.length; i++) {
              expect((e[i] as number) - (e[i - 1] as number)).toBeGreaterThanOrEqual(
                haproxy.cooldownSec * 1000,
              );
              const inHour = e.filter((t) => t > (e[i] as number) - 60 * min && t <= (e[i] as number));
              expect(inHour.length).toBeLessThanOrEqual(haproxy.maxChangesPerHour);
            }
            const cpu = w.policy.cpuUtilization?.utilizationTarget ?? 0;
            expect(cpu).toBeGreaterThanOrEqual(0.42 - 1e-9);
            expect(cpu).toBeLessThanOrEqual(0.6);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('redelivery after a transient failure', () => {
  const cool: Tier = { ...haproxy, cooldownSec: 300, maxChangesPerHour: 6 };

  it('is not held back by the cooldown its own first attempt recorded, and still counts once', () => {
    const w = new World(basePolicy(), cool);
    const first = planIncident(incident('a', 'open'), target(raise(2), cool), w.ctx(T0));
    expect(first).toMatchObject({ decision: 'applied', reason: 'escalate' });
    // The record was written, the patch failed (5xx): nothing changed in Compute.
    w.state = first.state ?? null;
    expect(w.state?.lastRequest).toEqual({ requestId: first.requestId, at: T0 });
    const again = w.notify(incident('a', 'open'), raise(2), T0 + 20_000, 3600);
    expect(again).toMatchObject({ decision: 'applied', reason: 'escalate', requestId: first.requestId });
    expect(again.patch).toEqual(first.patch);
    expect(w.state?.changes).toEqual([T0]);
    expect(w.floor()).toBe(4);
    // Another incident's escalation is still held back by that change.
    const other = w.notify(incident('b', 'open'), { type: 'cpu-target', target: 0.5 }, T0 + 30_000);
    expect(other).toMatchObject({
      decision: 'refused',
      reason: expect.stringMatching(/^withheld: .*cooldown/),
    });
  });

  it('a duplicate after success changes nothing', () => {
    const w = new World(basePolicy(), cool);
    w.notify(incident('a', 'open'), raise(2));
    const dup = w.notify(incident('a', 'open'), raise(2), T0 + 20_000);
    expect(dup).toMatchObject({ decision: 'noop', reason: 'lease-current' });
    expect(dup.state).toBeUndefined();
  });
});

describe('originals read back from KV are clamped on restore', () => {
  it('a forged tiny or huge CPU original is restored within the step of the target in force', () => {
    const w = new World();
    w.notify(incident('a', 'open'), { type: 'cpu-target', target: 0.5 });
    expect(w.policy.cpuUtilization?.utilizationTarget).toBe(0.5);
    w.state = { ...w.state!, original: { cpuTarget: 0.01 } };
    w.notify(incident('a', 'closed'), { type: 'cpu-target', target: 0.5 });
    // Never below what is in force: the forged 0.01 is not written.
    expect(w.policy.cpuUtilization?.utilizationTarget).toBe(0.5);

    const h = new World();
    h.notify(incident('a', 'open'), { type: 'cpu-target', target: 0.5 });
    h.state = { ...h.state!, original: { cpuTarget: 5 } };
    h.notify(incident('a', 'closed'), { type: 'cpu-target', target: 0.5 });
    // At most 0.5 / (1 - 0.3): the step a lease could have taken.
    expect(h.policy.cpuUtilization?.utilizationTarget).toBe(0.714286);
  });

  it('a forged tiny original cannot drive an escalation below the tier range either', () => {
    const w = new World();
    w.notify(incident('a', 'open'), { type: 'cpu-target', target: 0.5 });
    w.state = { ...w.state!, original: { cpuTarget: 0.01 } };
    w.notify(incident('b', 'open'), { type: 'cpu-target', target: 0.1 });
    expect(w.policy.cpuUtilization?.utilizationTarget).toBeGreaterThanOrEqual(0.4);
  });

  it('a forged original target on a signal the autoscaler does not use is dropped, not restored', () => {
    const p = basePolicy();
    delete p.cpuUtilization;
    const w = new World(p);
    w.state = { leases: {}, closed: {}, original: { cpuTarget: 0.05 }, changes: [] };
    const plan = w.sweep(T0);
    expect(plan.patch).toBeUndefined();
    expect(w.policy.cpuUtilization).toBeUndefined();
    expect(w.state?.original).toEqual({});
  });

  it('a forged mode OFF comes back as ON; a forged scaleInControl within what Compute accepts', () => {
    const w = new World();
    w.notify(incident('a', 'open'), { type: 'mode', mode: 'ONLY_SCALE_OUT' });
    w.state = { ...w.state!, original: { mode: 'OFF' } };
    w.notify(incident('a', 'closed'), { type: 'mode', mode: 'ONLY_SCALE_OUT' });
    expect(w.policy.mode).toBe('ON');

    const s = new World();
    s.notify(incident('a', 'open'), { type: 'scale-in-control', maxScaledInReplicas: 1, timeWindowSec: 600 });
    s.state = {
      ...s.state!,
      original: {
        scaleInControl: { maxScaledInReplicas: { fixed: -5, percent: 900 }, timeWindowSec: 99_999 },
      },
    };
    s.notify(incident('a', 'closed'), {
      type: 'scale-in-control',
      maxScaledInReplicas: 1,
      timeWindowSec: 600,
    });
    expect(s.policy.scaleInControl).toEqual({
      maxScaledInReplicas: { fixed: 0, percent: 100 },
      timeWindowSec: 3600,
    });
  });
});

describe('a floor whose schedule GCE does not report ACTIVE falls back to minNumReplicas', () => {
  const sec = 1000;
  const name = (id: string) => scheduleName('ilb-incident-', id);

  it('within the bound nothing more; after it minNumReplicas holds the floor, recorded; a redelivery acts once; closed reverts both', () => {
    const w = new World();
    w.gce = 'never';
    const first = w.notify(incident('a', 'open'), raise(2));
    expect(first).toMatchObject({ decision: 'applied', reason: 'escalate', verify: [name('a')] });
    expect(w.notify(incident('a', 'open'), raise(2), T0 + 10 * sec)).toMatchObject({
      decision: 'noop',
      reason: 'lease-current',
    });
    // The bound (20 s) has passed and the schedule still does not read ACTIVE.
    const fallback = w.notify(incident('a', 'open'), raise(2), T0 + 25 * sec);
    expect(fallback).toMatchObject({ decision: 'applied', reason: 'fallback' });
    expect(fallback.patch?.autoscalingPolicy).toEqual({ minNumReplicas: 4 });
    expect(fallback.verify).toBeUndefined();
    expect(w.state?.original).toEqual({ minNumReplicas: 2 });
    // The schedule already counted: the fallback is not a second change.
    expect(w.state?.changes).toEqual([T0]);
    const again = w.notify(incident('a', 'open'), raise(2), T0 + 30 * sec);
    expect(again).toMatchObject({ decision: 'noop', reason: 'lease-current' });
    expect(again.patch).toBeUndefined();
    expect(again.state).toBeUndefined();

    const done = w.notify(incident('a', 'closed'), raise(2), T0 + 10 * min);
    expect(done).toMatchObject({ decision: 'applied', reason: 'revert' });
    expect(done.patch?.autoscalingPolicy).toEqual({
      minNumReplicas: 2,
      scalingSchedules: { [name('a')]: null },
    });
    expect(w.state?.original).toEqual({});
    expect(w.policy.minNumReplicas).toBe(2);
    expect(w.notify(incident('a', 'closed'), raise(2), T0 + 11 * min).patch).toBeUndefined();
  });

  it('the caller’s own reads after the bound (inactiveSchedules) fall back at once, with the same record a redelivery would write', () => {
    const w = new World();
    w.gce = 'never';
    w.notify(incident('a', 'open'), raise(2));
    const now = T0 + 21 * sec;
    const hinted = planIncident(
      incident('a', 'open'),
      target(raise(2)),
      w.ctx(now, { inactiveSchedules: [name('a')] }),
    );
    const timed = planIncident(incident('a', 'open'), target(raise(2)), w.ctx(now));
    expect(hinted).toMatchObject({ decision: 'applied', reason: 'fallback' });
    expect(hinted.patch).toEqual(timed.patch);
    expect(hinted.state).toEqual(timed.state);
    expect(hinted.requestId).toBe(timed.requestId);
    // Before the bound, only the caller's reads can tell.
    const early = w.ctx(T0 + 5 * sec, { inactiveSchedules: [name('a')] });
    expect(planIncident(incident('a', 'open'), target(raise(2)), early).patch?.autoscalingPolicy).toEqual({
      minNumReplicas: 4,
    });
  });

  it('a schedule GCE reports ACTIVE needs no fallback, however long it runs', () => {
    const w = new World();
    const first = w.notify(incident('a', 'open'), raise(2));
    expect(first.verify).toEqual([name('a')]);
    expect(w.sweep(T0 + 30 * min)).toMatchObject({ decision: 'noop', reason: 'in-force' });
    expect(w.policy.minNumReplicas).toBe(2);
  });

  it('while it holds, floors count from the original minimum, follow the strongest lease within the tier, and the sweep reverts an expired one', () => {
    const w = new World(basePolicy(), free);
    w.gce = 'never';
    w.notify(incident('a', 'open'), raise(2), T0, 600);
    w.sweep(T0 + 30 * sec);
    expect(w.policy.minNumReplicas).toBe(4);
    // +2 from the original 2, not from the raised 4; a new floor goes straight into the minimum.
    const toNine: Change = { type: 'raise-min', to: 9 };
    const b = w.notify(incident('b', 'open'), toNine, T0 + min);
    expect(b.patch?.autoscalingPolicy.minNumReplicas).toBe(5); // at most maxStep (3) above 2
    expect(b.state?.original).toEqual({ minNumReplicas: 2 });
    expect(w.notify(incident('b', 'open'), toNine, T0 + min + 5 * sec).patch).toBeUndefined();
    // b closes: back to a's floor; a's lease expires: the sweep restores the original.
    w.notify(incident('b', 'closed'), toNine, T0 + 2 * min);
    expect(w.policy.minNumReplicas).toBe(4);
    const expired = w.sweep(T0 + 11 * min);
    expect(expired).toMatchObject({ decision: 'applied', reason: 'revert' });
    expect(w.policy.minNumReplicas).toBe(2);
    expect(w.state?.original).toEqual({});
    expect(w.ours()).toEqual({});
  });

  it('a forged original minimum is clamped to [current - maxStep, current]', () => {
    for (const [forged, back] of [
      [0, 1],
      [-50, 1],
      [99, 4],
      [3, 3],
    ] as const) {
      const w = new World({ ...basePolicy(), minNumReplicas: 4 });
      w.state = autoscalerStateSchema.parse({ original: { minNumReplicas: Math.max(0, forged) } });
      if (forged < 0) (w.state.original as { minNumReplicas: number }).minNumReplicas = forged;
      const plan = w.sweep(T0);
      expect(plan.patch?.autoscalingPolicy.minNumReplicas ?? 4).toBe(back);
      expect(w.state.original).toEqual({});
    }
  });
});

describe('a floor the group cannot reach (growth.ts)', () => {
  const group = groupRefOf('projects/ilb-demo/zones/us-central1-b/instanceGroupManagers/ilb-haproxy-mig')!;
  const stuck: Growth = { group, reached: 2, creating: 2, blockedBy: ['QUOTA_EXCEEDED'] };
  const plan = (w: World, change: Change, growth?: Growth) =>
    planIncident(incident('q', 'open'), target(change), w.ctx(T0, growth ? { growth } : {}));

  it('is refused while the group is stuck below it: nothing recorded, nothing sent, the metric', () => {
    const p = plan(new World(), raise(2), stuck);
    expect(p).toMatchObject({
      decision: 'refused',
      reason:
        'unreachable-floor: ilb-haproxy-mig has 2 instances and cannot create more ' +
        '(QUOTA_EXCEEDED; 2 pending); floor 4 not raised',
    });
    expect(p.patch).toBeUndefined();
    expect(p.state).toBeUndefined();
    expect(p.metrics).toEqual([
      { type: metricTypes.decision, labels: expect.objectContaining({ decision: 'refused' }), value: 1 },
      {
        type: 'custom.googleapis.com/ilb/scaling_alerts/unreachable_floor',
        labels: { group: 'ilb-haproxy-mig' },
        value: 1,
      },
    ]);
  });

  it('is raised once the group can grow again, or when its growth is not known', () => {
    for (const g of [{ ...stuck, creating: 0, reached: 4 }, undefined]) {
      const p = plan(new World(), raise(2), g);
      expect(p).toMatchObject({ decision: 'applied', reason: 'escalate' });
      expect(p.metrics.map((m) => m.type)).not.toContain(growthMetrics.unreachableFloor);
    }
  });

  it('concerns floors only, and not a lease already granted', () => {
    expect(plan(new World(), { type: 'mode', mode: 'ONLY_SCALE_OUT' }, stuck).reason).not.toMatch(
      /unreachable/,
    );
    const w = new World();
    w.notify(incident('q', 'open'), raise(2));
    expect(w.notify(incident('q', 'open'), raise(2), T0 + 60_000).reason).toBe('lease-current');
    expect(plan(w, raise(2), stuck).decision).not.toBe('refused');
  });
});
