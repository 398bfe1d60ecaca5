import fc from 'fast-check';
import { resolveBudget, scopeHolds } from '../../shared/health-sweep/config';
import type { NodeHealth, Observation, ReadOutcome, SweepMark } from '../../shared/health-sweep/observe';
import { planSweep, type SweepPlan } from '../../shared/health-sweep/plan';
import { refill } from '../../shared/health-sweep/token-bucket';
import { config, GA, GB, id, instName, node, T0, world, ZA, ZB, type Inst } from './health-sweep.world';

const MIN = 60_000;
const health = fc.constantFrom<NodeHealth | null>(
  'passing',
  'warning',
  'critical',
  'critical',
  'maintenance',
  null,
);
const zone = fc.constantFrom(ZA, ZB);
/** Nodes may also sit in a zone no watched group covers. */
const nodeZone = fc.constantFrom(ZA, ZB, 'us-east1-b');

/** Worlds where ids of nodes, marks, records, drains and lookups overlap the live ones on purpose. */
const arbCase = fc.record({
  instances: fc.uniqueArray(
    fc.record({
      n: fc.integer({ min: 1, max: 30 }),
      zone,
      status: fc.constantFrom('RUNNING', 'RUNNING', 'RUNNING', 'STOPPING', 'STAGING'),
      action: fc.constantFrom('NONE', 'NONE', 'NONE', 'RECREATING'),
      node: health,
      /** Minutes since the sweep first saw its problem, as its mark says. */
      problemAgo: fc.option(fc.integer({ min: 0, max: 30 })),
    }),
    { selector: (i) => i.n, maxLength: 20 },
  ),
  others: fc.array(
    fc.record({
      n: fc.integer({ min: 1, max: 60 }),
      zone: nodeZone,
      health,
      // A node under the name of an instance (a same-name reuse), or its own.
      reuseName: fc.boolean(),
      modifyIndex: fc.integer({ min: 1, max: 10_000 }),
    }),
    { maxLength: 12 },
  ),
  marks: fc.array(
    fc.record({
      n: fc.integer({ min: 1, max: 60 }),
      absentCount: fc.integer({ min: 0, max: 6 }),
      criticalAgo: fc.option(fc.integer({ min: 0, max: 30 })),
      missingAgo: fc.option(fc.integer({ min: 0, max: 30 })),
    }),
    { maxLength: 20 },
  ),
  records: fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 8 }),
  // Drain entries: a node name (an instance's or another) naming an id, live or not.
  drains: fc.array(fc.record({ name: fc.integer({ min: 1, max: 60 }), n: fc.integer({ min: 1, max: 60 }) }), {
    maxLength: 8,
  }),
  lookups: fc.array(
    fc.record({ n: fc.integer({ min: 1, max: 60 }), kind: fc.constantFrom('missing', 'same', 'other') }),
    { maxLength: 8 },
  ),
  // Mostly complete reads, so that the other rules get exercised too.
  incomplete: fc.oneof(
    { weight: 4, arbitrary: fc.constant(null) },
    {
      weight: 1,
      arbitrary: fc.record({
        source: fc.constantFrom('compute', 'consul', 'kv'),
        status: fc.constantFrom('partial', 'failed'),
      }),
    },
  ),
  unread: fc.oneof(
    { weight: 6, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.subarray([GA, GB], { minLength: 1, maxLength: 1 }) },
  ),
  unstable: fc.subarray([GA, GB]),
  bucket: fc.option(
    fc.record({
      tokens: fc.double({ min: -2, max: 20, noNaN: true }),
      agoMs: fc.integer({ min: -MIN, max: 10 * MIN }),
    }),
  ),
  thresholds: fc.record({
    absentSweeps: fc.integer({ min: 1, max: 4 }),
    maxRecreations: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom('10%', '50%', '100%')),
    healthyMinimum: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom('0%', '50%', '75%')),
    tokenBucket: fc.record({
      ratePerMinute: fc.constantFrom(0.5, 6, 60),
      burst: fc.integer({ min: 1, max: 6 }),
    }),
    zoneDeadThreshold: fc.constantFrom(0.3, 0.55, 0.8, 1),
  }),
  repairOrphans: fc.boolean(),
});

type Case = typeof arbCase extends fc.Arbitrary<infer C> ? C : never;

function build(c: Case): { cfg: ReturnType<typeof config>; obs: Observation } {
  const cfg = config({ repairOrphans: c.repairOrphans }, c.thresholds);
  const at = T0;
  const reads: ReadOutcome[] = c.incomplete ? [{ ...c.incomplete, what: 'something' }] : [];
  const obs = world(c.instances as Inst[], {
    at,
    nodes: c.others.map((o) =>
      node(
        o.reuseName ? instName(o.n, o.zone) : `other-${o.n}`,
        id(o.n),
        o.health ?? 'passing',
        o.zone,
        o.modifyIndex,
      ),
    ),
    marks: [
      ...c.instances.flatMap((i): Array<[string, SweepMark]> =>
        i.problemAgo === null
          ? []
          : [
              [
                id(i.n),
                {
                  absentCount: 0,
                  criticalSince: at - i.problemAgo * MIN,
                  missingSince: at - i.problemAgo * MIN,
                },
              ],
            ],
      ),
      ...c.marks.map((m): [string, SweepMark] => [
        id(m.n),
        {
          absentCount: m.absentCount,
          ...(m.criticalAgo !== null ? { criticalSince: at - m.criticalAgo * MIN } : {}),
          ...(m.missingAgo !== null ? { missingSince: at - m.missingAgo * MIN } : {}),
        },
      ]),
    ],
    records: c.records.map((n) => [id(n)]),
    drains: c.drains.map((d) => [instName(d.name), id(d.n)]),
    lookups: c.lookups.map((l) => [
      id(l.n),
      l.kind === 'missing'
        ? { found: false }
        : { found: true, id: l.kind === 'same' ? id(l.n) : id(l.n + 1000), status: 'RUNNING' },
    ]),
    bucket: c.bucket
      ? { value: { tokens: c.bucket.tokens, at: at - c.bucket.agoMs }, modifyIndex: 3 }
      : { value: null, modifyIndex: 0 },
    reads,
    unread: c.unread,
    unstable: c.unstable,
  });
  return { cfg, obs };
}

const liveIds = (obs: Observation) =>
  new Set(obs.groups.flatMap((g) => g.members.map((m) => m.id)).filter((x): x is string => x !== undefined));
const acting = (plan: SweepPlan) =>
  plan.actions.filter((a) => a.type === 'deregister' || a.type === 'recreate');

describe('planSweep properties', () => {
  it('never deregisters a node whose instance id is live, and only with the index it read', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        const live = liveIds(obs);
        for (const a of planSweep(cfg, obs).actions) {
          if (a.type !== 'deregister') continue;
          expect(live.has(a.instanceId)).toBe(false);
          const claimed = obs.nodes.filter((n) => n.name === a.node && n.modifyIndex === a.modifyIndex);
          const identity = claimed.find((n) => n.identity?.instanceId === a.instanceId)?.identity;
          expect(identity).toBeDefined();
          // Only nodes of watched groups: never a Consul server or another group's node.
          const watched = cfg.groups.filter(
            (g) =>
              g.project === identity?.project &&
              g.name === identity.group &&
              scopeHolds(g.scope, identity.zone),
          );
          expect(watched.map((g) => g.key)).toEqual([a.group]);
          // Compute said the instance exists: kept.
          const lookup = obs.lookups.get(a.instanceId);
          expect(lookup?.found && lookup.id === a.instanceId).toBeFalsy();
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never takes more tokens than the bucket holds', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        const start = obs.bucket.value ?? (obs.bucket.modifyIndex > 0 ? { tokens: 0, at: obs.at } : null);
        const available = Math.floor(refill(start, obs.at, cfg.thresholds.tokenBucket).tokens);
        expect(acting(planSweep(cfg, obs)).length).toBeLessThanOrEqual(available);
      }),
      { numRuns: 500 },
    );
  });

  it('never takes more than burst + rate × elapsed over consecutive sweeps', () => {
    fc.assert(
      fc.property(
        arbCase,
        fc.array(fc.integer({ min: 0, max: 5 * MIN }), { minLength: 1, maxLength: 6 }),
        (c, gaps) => {
          const { cfg, obs } = build({ ...c, bucket: null, incomplete: null, unread: [] });
          let bucket = obs.bucket;
          let at = obs.at;
          let taken = 0;
          for (const gap of gaps) {
            at += gap;
            const plan = planSweep(cfg, { ...obs, at, bucket });
            taken += acting(plan).length;
            if (plan.bucket) bucket = { value: plan.bucket.state, modifyIndex: bucket.modifyIndex + 1 };
          }
          const { ratePerMinute, burst } = cfg.thresholds.tokenBucket;
          expect(taken).toBeLessThanOrEqual(Math.floor(burst + (ratePerMinute * (at - obs.at)) / MIN + 1e-9));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never acts on a partitioned zone, and not at all when every zone is', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        const plan = planSweep(cfg, obs);
        const partitioned = new Set(plan.report.zones.filter((z) => z.partitioned).map((z) => z.zone));
        for (const a of acting(plan)) expect(partitioned.has(a.zone)).toBe(false);
        if (plan.report.zones.length > 0 && partitioned.size === plan.report.zones.length) {
          expect(plan.actions).toEqual([]);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('is report-only on any incomplete read: no action, no mark, no token', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        const plan = planSweep(cfg, obs);
        if (c.incomplete || c.unread.length > 0) {
          expect(plan.report.reportOnly).toContain('incomplete-read');
          expect(plan.actions).toEqual([]);
          expect(plan.marks).toEqual([]);
          expect(plan.bucket).toBeNull();
        }
        // Whatever was not done was refused with a reason.
        for (const r of plan.report.refused) expect(r.reason).toEqual(expect.any(String));
      }),
      { numRuns: 500 },
    );
  });

  it('recreates only in stable groups, within the budget and above the healthy minimum', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        const plan = planSweep(cfg, obs);
        for (const g of cfg.groups) {
          const recreations = plan.actions.filter((a) => a.type === 'recreate' && a.group === g.key).length;
          if (recreations === 0) continue;
          const observed = obs.groups.find((o) => o.key === g.key);
          expect(observed?.isStable).toBe(true);
          const members = observed?.members ?? [];
          const running = members.filter((m) => m.instanceStatus === 'RUNNING' && m.currentAction === 'NONE');
          expect(recreations).toBeLessThanOrEqual(
            resolveBudget(g.maxRecreations, members.length, 'down-min-one'),
          );
          expect(running.length - recreations).toBeGreaterThanOrEqual(
            resolveBudget(g.healthyMinimum, members.length, 'up'),
          );
        }
        for (const a of plan.actions) {
          if (a.type !== 'recreate') continue;
          const member = obs.groups.flatMap((g) => g.members).find((m) => m.id === a.instanceId);
          expect(member).toMatchObject({ instanceStatus: 'RUNNING', currentAction: 'NONE' });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never recreates a member being drained, never counts it dead, never reaps a drain of a live id', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        const plan = planSweep(cfg, obs);
        const drained = new Set(
          [...obs.drains.values()].flatMap((d) => (d.value ? [d.value.instanceId] : [])),
        );
        const live = liveIds(obs);
        const claimed = new Set(obs.nodes.flatMap((n) => (n.identity ? [n.identity.instanceId] : [])));
        for (const a of plan.actions) {
          if (a.type === 'recreate') expect(drained.has(a.instanceId)).toBe(false);
          if (a.type === 'delete-drain') {
            expect(live.has(a.instanceId) || claimed.has(a.instanceId)).toBe(false);
            expect(obs.drains.get(a.node)).toEqual({
              value: expect.objectContaining({ instanceId: a.instanceId }),
              modifyIndex: a.modifyIndex,
            });
          }
        }
        // Draining members are not among the running members the zones count.
        const runningCounted = plan.report.zones.reduce((sum, z) => sum + z.running, 0);
        const drainingRunning = plan.report.draining.length;
        const running = obs.groups
          .flatMap((g) => g.members)
          .filter((m) => m.instanceStatus === 'RUNNING' && m.currentAction === 'NONE').length;
        expect(runningCounted).toBeLessThanOrEqual(running - drainingRunning);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { cfg, obs } = build(c);
        expect(planSweep(cfg, obs)).toEqual(planSweep(cfg, obs));
      }),
      { numRuns: 100 },
    );
  });

  it('converges: in a still world, every stale node of a watched group goes, and nothing else', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const calm = {
          ...c,
          incomplete: null,
          unread: [],
          lookups: [],
          bucket: null,
          // Nothing looks dead, so no zone is partitioned.
          instances: c.instances.map((i) => ({ ...i, node: 'passing' as const })),
          others: c.others.map((o) => ({ ...o, health: 'passing' as const })),
        };
        const { cfg, obs } = build(calm);
        const deregistered = new Set<string>();
        let current: Observation = obs;
        for (let sweep = 0; sweep <= cfg.thresholds.absentSweeps; sweep++) {
          const plan = planSweep(cfg, current);
          for (const a of plan.actions) if (a.type === 'deregister') deregistered.add(a.node);
          // The world after the sweep: its marks written, its nodes gone, a minute later.
          const marks = new Map(current.marks);
          for (const w of plan.marks) {
            if (w.op === 'put') marks.set(w.instanceId, { value: w.mark, modifyIndex: 1 });
            else marks.delete(w.instanceId);
          }
          current = {
            ...current,
            at: current.at + 10 * MIN,
            marks,
            nodes: current.nodes.filter((n) => !deregistered.has(n.name)),
            bucket: plan.bucket ? { value: plan.bucket.state, modifyIndex: 1 } : current.bucket,
          };
        }
        const live = liveIds(obs);
        const keys = new Set(
          cfg.groups.map((g) => `${g.name}/${g.scope.kind === 'zone' ? g.scope.zone : ''}`),
        );
        const expected = obs.nodes.filter(
          (n) =>
            n.identity &&
            !live.has(n.identity.instanceId) &&
            keys.has(`${n.identity.group}/${n.identity.zone}`),
        );
        const names = new Set(expected.map((n) => n.name));
        for (const name of deregistered) expect(names.has(name)).toBe(true);
        // Nothing is stale before the Nth sweep, so that sweep has the whole burst.
        if (names.size <= cfg.thresholds.tokenBucket.burst) expect(deregistered).toEqual(names);
      }),
      { numRuns: 300 },
    );
  });

  it('deregisters a node that stays absent exactly on the Nth sweep, without a lookup', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), (n) => {
        const cfg = config({}, { absentSweeps: n });
        let marks: Array<[string, SweepMark, number]> = [];
        for (let sweep = 1; sweep <= n; sweep++) {
          const obs = world([{ n: 1 }, { n: 2, zone: ZB }], {
            at: T0 + sweep * MIN,
            nodes: [node('backend-a-gone', id(500))],
            marks,
          });
          const plan = planSweep(cfg, obs);
          expect(plan.actions.some((a) => a.type === 'deregister')).toBe(sweep === n);
          marks = plan.marks.flatMap((w) =>
            w.op === 'put' ? [[w.instanceId, w.mark, sweep] as [string, SweepMark, number]] : [],
          );
        }
      }),
    );
  });
});
