import type { SweepMark } from '../../shared/health-sweep/observe';
import { metricPoints } from '../../shared/health-sweep/metrics';
import { lookupCandidates, planSweep } from '../../shared/health-sweep/plan';
import { config, GA, GB, id, instName, instUrl, node, P, T0, world, ZA, ZB } from './health-sweep.world';

const MIN = 60_000;
const types = (plan: { actions: { type: string }[] }) => plan.actions.map((a) => a.type);
/** Actions other than the ledger purge every acting sweep carries. */
const acts = (plan: { actions: { type: string }[] }) => plan.actions.filter((a) => a.type !== 'purge-ledger');
/** A node of group backend-a whose instance is in no group. */
const stranger = (n: number) => node(`backend-a-gone-${n}`, id(900 + n));

describe('planSweep: stale nodes', () => {
  it('counts a node whose instance id is in no group, and deregisters nobody before N sweeps', () => {
    const plan = planSweep(config(), world([{ n: 1 }], { nodes: [stranger(1)] }));
    expect(plan.report.absent).toEqual([
      { node: 'backend-a-gone-1', instanceId: id(901), zone: ZA, group: GA, absentCount: 1 },
    ]);
    expect(acts(plan)).toEqual([]);
    expect(plan.marks).toEqual([{ op: 'put', instanceId: id(901), mark: { absentCount: 1 }, cas: 0 }]);
  });

  it('deregisters through CAS on its ModifyIndex on the Nth consecutive absence', () => {
    const gone = node('backend-a-gone-1', id(901), 'critical', ZA, 4242);
    const plan = planSweep(
      config(),
      world([{ n: 1 }], { nodes: [gone], marks: [[id(901), { absentCount: 2 }, 55]] }),
    );
    expect(plan.report.stale).toEqual([
      {
        node: 'backend-a-gone-1',
        instanceId: id(901),
        zone: ZA,
        group: GA,
        absentCount: 3,
        reason: 'absent',
      },
    ]);
    expect(acts(plan)).toEqual([
      {
        type: 'deregister',
        node: 'backend-a-gone-1',
        modifyIndex: 4242,
        instanceId: id(901),
        zone: ZA,
        group: GA,
        reason: 'absent',
      },
    ]);
    expect(plan.marks).toEqual([{ op: 'put', instanceId: id(901), mark: { absentCount: 3 }, cas: 55 }]);
  });

  it.each([
    ['Compute has no such instance', { found: false } as const],
    ['another instance owns the name now', { found: true, id: id(1), status: 'RUNNING' } as const],
  ])('deregisters at once when %s', (_what, lookup) => {
    const plan = planSweep(
      config(),
      world([{ n: 1 }], { nodes: [stranger(1)], lookups: [[id(901), lookup]] }),
    );
    expect(plan.report.stale).toMatchObject([
      { node: 'backend-a-gone-1', absentCount: 1, reason: 'not-found' },
    ]);
    expect(types(plan)).toContain('deregister');
  });

  it('never deregisters a node whose instance Compute still has, however long it is absent', () => {
    const lookup = { found: true, id: id(901), status: 'RUNNING' } as const;
    const plan = planSweep(
      config(),
      world([{ n: 1 }], {
        nodes: [stranger(1)],
        marks: [[id(901), { absentCount: 50 }]],
        lookups: [[id(901), lookup]],
      }),
    );
    expect(plan.report.kept).toMatchObject([{ node: 'backend-a-gone-1', absentCount: 51 }]);
    expect(plan.report.stale).toEqual([]);
    expect(acts(plan)).toEqual([]);
  });

  it('never touches a same-name replacement: the node carries the live id', () => {
    // Instance 1 was recreated under its name: the group lists the new id, the node carries it.
    const plan = planSweep(config(), world([{ n: 1 }], { marks: [[id(1), { absentCount: 9 }, 31]] }));
    expect(acts(plan)).toEqual([]);
    expect(plan.report.stale).toEqual([]);
    // Its leftover count from the old life goes.
    expect(plan.marks).toEqual([{ op: 'delete', instanceId: id(1), cas: 31 }]);
  });

  it('an old node under a reused name is stale, the replacement instance is not touched', () => {
    // The node still carries the old id 901 under the name the new instance 1 now has.
    const old = node(instName(1), id(901), 'critical');
    const plan = planSweep(
      config(),
      world([{ n: 1, node: null }], { nodes: [old], marks: [[id(901), { absentCount: 2 }]] }),
    );
    expect(acts(plan)).toEqual([expect.objectContaining({ type: 'deregister', instanceId: id(901) })]);
    expect(plan.report.stale).toHaveLength(1);
  });

  it('a node whose id is a member of another watched group is not absent', () => {
    const plan = planSweep(config(), world([{ n: 1, zone: ZB, node: null }], { nodes: [node('x', id(1))] }));
    expect(plan.report.absent).toEqual([]);
    expect(plan.report.stale).toEqual([]);
  });

  it('ignores nodes of groups it does not watch, and reports nodes without valid identity', () => {
    const server = {
      ...node('consul-1', id(950)),
      identity: { ...node('c', id(950)).identity!, group: 'consul' },
    };
    const elsewhere = node('backend-c-1', id(951), 'passing', 'us-east1-b');
    const anonymous = { ...node('mystery', id(952)), identity: undefined };
    const plan = planSweep(
      config(),
      world([], { nodes: [server, elsewhere, anonymous], marks: [[id(950), { absentCount: 99 }]] }),
    );
    expect(plan.report.absent).toEqual([]);
    expect(plan.report.stale).toEqual([]);
    expect(plan.report.unidentified).toEqual(['mystery']);
    expect(acts(plan)).toEqual([]);
    // A mark about something the sweep no longer tracks is dropped.
    expect(plan.marks).toEqual([{ op: 'delete', instanceId: id(950), cas: 7 }]);
  });

  it('asks Compute first about the nodes closest to N, within the limit', () => {
    const obs = world([{ n: 1 }], {
      nodes: [stranger(1), stranger(2), stranger(3)],
      marks: [[id(902), { absentCount: 2 }]],
    });
    expect(lookupCandidates(config(), obs, 2)).toEqual([
      { instanceId: id(902), project: P, zone: ZA, name: 'backend-a-gone-2' },
      { instanceId: id(901), project: P, zone: ZA, name: 'backend-a-gone-1' },
    ]);
  });
});

describe('planSweep: broken instances', () => {
  const brokenMark = (
    n: number,
    since = T0 - 10 * MIN,
  ): [string, { absentCount: number; criticalSince: number }] => [
    id(n),
    { absentCount: 0, criticalSince: since },
  ];

  it('starts the grace on the first critical sweep, and recreates after it', () => {
    const first = planSweep(config(), world([{ n: 1, node: 'critical' }, { n: 2 }]));
    expect(acts(first)).toEqual([]);
    expect(first.marks).toEqual([
      { op: 'put', instanceId: id(1), mark: { absentCount: 0, criticalSince: T0 }, cas: 0 },
    ]);
    const later = planSweep(
      config(),
      world([{ n: 1, node: 'critical' }, { n: 2 }], {
        at: T0 + 5 * MIN,
        marks: [[id(1), { absentCount: 0, criticalSince: T0 }]],
      }),
    );
    expect(later.report.broken).toEqual([
      { instanceId: id(1), name: instName(1), zone: ZA, group: GA, since: T0 },
    ]);
    expect(acts(later)).toEqual([
      {
        type: 'recreate',
        group: GA,
        instance: instUrl(1),
        instanceId: id(1),
        name: instName(1),
        zone: ZA,
        reason: 'broken',
      },
    ]);
    // Unchanged marks are not rewritten.
    expect(later.marks).toEqual([]);
  });

  it.each([
    ['not RUNNING', { status: 'STOPPING' }],
    ['being acted on by the group', { action: 'RESTARTING' }],
  ])('leaves an instance %s alone', (_what, extra) => {
    const plan = planSweep(
      config(),
      world([{ n: 1, node: 'critical', ...extra }, { n: 2 }], { marks: [brokenMark(1)] }),
    );
    expect(acts(plan)).toEqual([]);
    expect(plan.report.broken).toEqual([]);
  });

  it('leaves a draining node (maintenance) alone', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1, node: 'maintenance' }, { n: 2 }], { marks: [brokenMark(1)] }),
    );
    expect(acts(plan)).toEqual([]);
    expect(plan.marks).toEqual([{ op: 'delete', instanceId: id(1), cas: 7 }]);
  });

  it('leaves a member on the drain list alone, critical or without a node, whatever its key name', () => {
    const plan = planSweep(
      config({ repairOrphans: true }),
      world([{ n: 1, node: 'critical' }, { n: 2, node: null }, { n: 3 }, { n: 4 }], {
        marks: [brokenMark(1), [id(2), { absentCount: 0, missingSince: T0 - 60 * MIN }]],
        drains: [
          [instName(1), id(1)],
          ['renamed-2', id(2)],
        ],
      }),
    );
    expect(acts(plan)).toEqual([]);
    expect(plan.report.broken).toEqual([]);
    expect(plan.report.orphans).toEqual([]);
    expect(plan.report.draining.map((d) => d.name)).toEqual([instName(1), instName(2)]);
    // Neither counts as running, so neither as dead.
    expect(plan.report.zones).toEqual([{ zone: ZA, running: 2, dead: 0, partitioned: false }]);
    expect(plan.marks).toEqual([
      { op: 'delete', instanceId: id(1), cas: 7 },
      { op: 'delete', instanceId: id(2), cas: 7 },
    ]);
  });

  it('refuses to recreate in a group that is not stable', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1, node: 'critical' }, { n: 2 }, { n: 3 }], { marks: [brokenMark(1)], unstable: [GA] }),
    );
    expect(acts(plan)).toEqual([]);
    expect(plan.report.refused).toEqual([
      { action: expect.objectContaining({ type: 'recreate', instanceId: id(1) }), reason: 'group-unstable' },
    ]);
  });

  it.each([
    [1, 1],
    [2, 2],
    ['25%', 2],
    ['10%', 1],
    [0, 0],
  ])('recreates at most maxRecreations=%s per group at once (%s of 3 broken in 8)', (max, allowed) => {
    const instances = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({
      n,
      node: n <= 3 ? ('critical' as const) : undefined,
    }));
    const plan = planSweep(
      config({}, { maxRecreations: max }),
      world(instances, { marks: [1, 2, 3].map((n) => brokenMark(n)) }),
    );
    expect(acts(plan)).toHaveLength(allowed);
    expect(plan.report.refused.map((r) => r.reason)).toEqual(Array(3 - allowed).fill('group-budget'));
  });

  it.each([
    [2, 2],
    [3, 1],
    [4, 0],
    ['50%', 2],
    ['75%', 1],
  ])(
    'never leaves fewer running members than healthyMinimum=%s (%s recreations of 2 broken in 4)',
    (min, allowed) => {
      const instances = [1, 2, 3, 4].map((n) => ({ n, node: n <= 2 ? ('critical' as const) : undefined }));
      const plan = planSweep(
        config({}, { healthyMinimum: min, maxRecreations: 10, zoneDeadThreshold: 1 }),
        world(instances, { marks: [brokenMark(1), brokenMark(2)] }),
      );
      expect(acts(plan)).toHaveLength(allowed);
      expect(plan.report.refused.map((r) => r.reason)).toEqual(Array(2 - allowed).fill('healthy-minimum'));
    },
  );

  it('per-group overrides win over the thresholds', () => {
    const cfg = config({
      groups: [{ project: P, zone: ZA, name: 'backend-a', role: 'backend', maxRecreations: 2 }],
    });
    const instances = [1, 2, 3, 4, 5, 6].map((n) => ({
      n,
      node: n <= 3 ? ('critical' as const) : undefined,
    }));
    const plan = planSweep(
      cfg,
      world(instances, { marks: [1, 2, 3].map((n) => brokenMark(n)), unread: [GB] }),
    );
    expect(acts(plan)).toHaveLength(2);
  });

  it('forgets when a node recovers', () => {
    const plan = planSweep(config(), world([{ n: 1 }], { marks: [brokenMark(1)] }));
    expect(plan.marks).toEqual([{ op: 'delete', instanceId: id(1), cas: 7 }]);
  });
});

describe('planSweep: orphans', () => {
  it('waits the boot grace, then reports a running instance without a node', () => {
    const booting = planSweep(config(), world([{ n: 1, node: null }, { n: 2 }]));
    expect(booting.report.orphans).toEqual([]);
    expect(booting.marks).toEqual([
      { op: 'put', instanceId: id(1), mark: { absentCount: 0, missingSince: T0 }, cas: 0 },
    ]);
    const obs = world([{ n: 1, node: null }, { n: 2 }], {
      at: T0 + 10 * MIN,
      marks: [[id(1), { absentCount: 0, missingSince: T0 }]],
    });
    const plan = planSweep(config(), obs);
    expect(plan.report.orphans).toEqual([
      { instanceId: id(1), name: instName(1), zone: ZA, group: GA, since: T0 },
    ]);
    expect(acts(plan)).toEqual([]);
    expect(plan.report.refused).toEqual([]);
    const repaired = planSweep(config({ repairOrphans: true }), obs);
    expect(acts(repaired)).toEqual([
      expect.objectContaining({ type: 'recreate', instanceId: id(1), reason: 'orphan' }),
    ]);
  });

  it('an instance still being created is no orphan', () => {
    const plan = planSweep(
      config({ repairOrphans: true }),
      world([{ n: 1, node: null, status: 'STAGING', action: 'CREATING' }, { n: 2 }], {
        marks: [[id(1), { absentCount: 0, missingSince: T0 - 60 * MIN }]],
      }),
    );
    expect(plan.report.orphans).toEqual([]);
    expect(acts(plan)).toEqual([]);
  });
});

describe('planSweep: leftovers', () => {
  it('reaps the record and the drain entry of an instance gone for N sweeps, by CAS', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1 }], {
        records: [[id(901)], [id(902)], [id(1)]],
        drains: [
          ['backend-a-901', id(901), 31],
          // A same-name replacement's drain key named the old id: it goes too.
          [instName(1), id(903), 32],
          // Draining a live member, or an id gone for fewer than N sweeps: kept.
          [instName(1, ZB), id(1), 33],
          ['backend-a-904', id(904), 34],
          // An entry that does not parse drains nothing and is left alone.
          ['backend-a-905', null, 35],
        ],
        marks: [
          [id(901), { absentCount: 2 }],
          [id(902), { absentCount: 2 }],
          [id(903), { absentCount: 2 }],
        ],
      }),
    );
    expect(plan.report.leftovers).toEqual([{ instanceId: id(901) }, { instanceId: id(902) }]);
    expect(plan.report.drainLeftovers).toEqual([
      { node: instName(1), instanceId: id(903) },
      { node: 'backend-a-901', instanceId: id(901) },
    ]);
    expect(plan.actions).toEqual([
      { type: 'delete-drain', node: instName(1), instanceId: id(903), modifyIndex: 32 },
      { type: 'delete-drain', node: 'backend-a-901', instanceId: id(901), modifyIndex: 31 },
      { type: 'delete-record', instanceId: id(901), modifyIndex: 9 },
      { type: 'delete-record', instanceId: id(902), modifyIndex: 9 },
      { type: 'purge-ledger' },
    ]);
    // The absence of the drained ids is counted like a node's.
    expect(plan.marks).toContainEqual({ op: 'put', instanceId: id(904), mark: { absentCount: 1 }, cas: 0 });
  });

  it('keeps the drain entry of an id a node still claims, and reaps nothing on a report-only sweep', () => {
    const claimed = node('frontend-1', id(906), 'passing', 'us-east1-b');
    const world1 = world([{ n: 1 }], {
      nodes: [claimed],
      drains: [
        ['frontend-1', id(906)],
        ['backend-a-907', id(907)],
      ],
      marks: [
        [id(906), { absentCount: 5 }],
        [id(907), { absentCount: 5 }],
      ],
    });
    expect(planSweep(config(), world1).report.drainLeftovers).toEqual([
      { node: 'backend-a-907', instanceId: id(907) },
    ]);
    const partial = planSweep(config(), {
      ...world1,
      reads: [{ source: 'kv', what: 'gce-ilb-orchestrator/draining/', status: 'failed' }],
    });
    expect(partial.actions).toEqual([]);
    expect(partial.report.refused).toContainEqual({
      action: { type: 'delete-drain', node: 'backend-a-907', instanceId: id(907), modifyIndex: 11 },
      reason: 'incomplete-read',
    });
  });

  it('keeps the record of an instance whose node is still registered, in any group', () => {
    const elsewhere = node('frontend-1', id(903), 'passing', 'us-east1-b');
    const plan = planSweep(
      config(),
      world([], {
        nodes: [elsewhere],
        records: [[id(903)]],
        marks: [[id(903), { absentCount: 5 }]],
      }),
    );
    expect(plan.report.leftovers).toEqual([]);
    expect(plan.actions).toEqual([{ type: 'purge-ledger' }]);
  });

  it('counts a record without node towards N like a node', () => {
    const plan = planSweep(config(), world([], { records: [[id(904)]] }));
    expect(plan.report.leftovers).toEqual([]);
    expect(plan.marks).toEqual([{ op: 'put', instanceId: id(904), mark: { absentCount: 1 }, cas: 0 }]);
  });
});

describe('planSweep: partition safety', () => {
  const zoneA = (dead: number, of: number) =>
    Array.from({ length: of }, (_, i) => ({ n: i + 1, node: i < dead ? ('critical' as const) : undefined }));
  const zoneB = (dead: number, of: number) =>
    Array.from({ length: of }, (_, i) => ({
      n: 100 + i,
      zone: ZB,
      node: i < dead ? ('critical' as const) : undefined,
    }));
  const marksFor = (ns: number[]) =>
    ns.map((n): [string, SweepMark] => [id(n), { absentCount: 0, criticalSince: T0 - 60 * MIN }]);

  it('only reports a zone where more than the threshold of members look dead', () => {
    const staleA = node('backend-a-gone-1', id(901), 'critical', ZA);
    const staleB = node('backend-b-gone-1', id(902), 'critical', ZB);
    const plan = planSweep(
      config(),
      world([...zoneA(3, 5), ...zoneB(1, 5)], {
        nodes: [staleA, staleB],
        marks: [...marksFor([1, 2, 3, 100]), [id(901), { absentCount: 5 }], [id(902), { absentCount: 5 }]],
      }),
    );
    expect(plan.report.zones).toEqual([
      { zone: ZA, running: 5, dead: 3, partitioned: true },
      { zone: ZB, running: 5, dead: 1, partitioned: false },
    ]);
    expect(plan.report.reportOnly).toEqual([]);
    expect(acts(plan).map((a) => ('zone' in a ? a.zone : ''))).toEqual([ZB, ZB]);
    expect(plan.report.refused.map((r) => r.reason)).toEqual(Array(4).fill('zone-partitioned'));
  });

  it('acts at exactly the threshold ("more than" it is dead)', () => {
    const plan = planSweep(
      config({}, { zoneDeadThreshold: 0.5 }),
      world([...zoneA(2, 4), ...zoneB(0, 2)], { marks: marksFor([1, 2]) }),
    );
    expect(plan.report.zones[0]).toMatchObject({ zone: ZA, partitioned: false });
    expect(types(plan)).toContain('recreate');
  });

  it('counts orphans past the boot grace as dead, booting ones and draining nodes not at all', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1, node: null }, { n: 2, node: null }, { n: 3, node: 'maintenance' }, { n: 4 }], {
        marks: [[id(1), { absentCount: 0, missingSince: T0 - 60 * MIN }]],
      }),
    );
    expect(plan.report.zones).toEqual([{ zone: ZA, running: 2, dead: 1, partitioned: false }]);
  });

  it('does nothing when every zone looks dead, but keeps counting', () => {
    const plan = planSweep(
      config(),
      world([...zoneA(3, 3), ...zoneB(2, 2)], {
        nodes: [node('backend-a-gone-1', id(901))],
        marks: [...marksFor([1, 2, 3, 100, 101]), [id(901), { absentCount: 5 }]],
      }),
    );
    expect(plan.report.reportOnly).toEqual(['all-zones-dead']);
    expect(plan.actions).toEqual([]);
    expect(plan.bucket).toBeNull();
    expect(new Set(plan.report.refused.map((r) => r.reason))).toEqual(new Set(['all-zones-dead']));
    expect(plan.report.refused.map((r) => r.action.type).sort()).toEqual([
      'deregister',
      'purge-ledger',
      ...Array(5).fill('recreate'),
    ]);
    expect(plan.marks).toEqual([{ op: 'put', instanceId: id(901), mark: { absentCount: 6 }, cas: 7 }]);
  });

  it.each([
    [
      'a Consul read failed',
      { reads: [{ source: 'consul', what: 'health/state/any', status: 'failed' }] },
      3,
    ],
    ['a group was listed partially', { reads: [{ source: 'compute', what: GA, status: 'partial' }] }, 3],
    // The broken instance is in the group not read: only the deregistration and the purge are left.
    ['a group was not read at all', { unread: [GA] }, 2],
  ] as const)('is report-only, writes no mark and takes no token when %s', (_what, extra, refusals) => {
    const plan = planSweep(
      config(),
      world([{ n: 1, node: 'critical' }, { n: 2 }, { n: 3 }], {
        ...extra,
        reads: extra && 'reads' in extra ? [...extra.reads] : [],
        // In zone B: the partially listed group is backend-a.
        nodes: [node('backend-b-gone-1', id(901), 'passing', ZB)],
        marks: [...marksFor([1]), [id(901), { absentCount: 5 }]],
      }),
    );
    expect(plan.report.reportOnly).toEqual(['incomplete-read']);
    expect(plan.report.incompleteReads).toHaveLength(1);
    expect(plan.actions).toEqual([]);
    expect(plan.marks).toEqual([]);
    expect(plan.bucket).toBeNull();
    expect(plan.report.refused.map((r) => r.reason)).toEqual(Array(refusals).fill('incomplete-read'));
  });

  it('judges no node of a group it could not list completely', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1 }, { n: 2, zone: ZB }], {
        reads: [{ source: 'compute', what: GA, status: 'partial' }],
        nodes: [node('backend-a-gone-1', id(901)), node('backend-b-gone-1', id(902), 'passing', ZB)],
        marks: [
          [id(901), { absentCount: 5 }],
          [id(902), { absentCount: 5 }],
        ],
      }),
    );
    expect(plan.report.stale.map((x) => x.node)).toEqual(['backend-b-gone-1']);
    expect(plan.report.refused).toEqual([
      {
        action: expect.objectContaining({ type: 'deregister', node: 'backend-b-gone-1' }),
        reason: 'incomplete-read',
      },
      { action: { type: 'purge-ledger' }, reason: 'incomplete-read' },
    ]);
  });
});

describe('planSweep: token bucket', () => {
  const gone = (count: number) =>
    Array.from({ length: count }, (_, i) =>
      node(`backend-a-gone-${i}`, id(900 + i), 'critical', ZA, 500 + i),
    );
  const marks = (count: number) =>
    Array.from(
      { length: count },
      (_, i) => [id(900 + i), { absentCount: 5 }] as [string, { absentCount: number }],
    );

  it('takes one token per deregistration or recreation, refuses the rest, and stores the bucket (CAS)', () => {
    const plan = planSweep(
      config({}, { tokenBucket: { ratePerMinute: 6, burst: 2 } }),
      world([{ n: 1 }], { nodes: gone(5), marks: marks(5), bucket: { value: null, modifyIndex: 0 } }),
    );
    expect(types(plan)).toEqual(['deregister', 'deregister', 'purge-ledger']);
    expect(plan.report.refused.map((r) => r.reason)).toEqual(Array(3).fill('rate-limited'));
    expect(plan.bucket).toEqual({ state: { tokens: 0, at: T0 }, cas: 0 });
  });

  it('refills at the configured rate', () => {
    const plan = planSweep(
      config({}, { tokenBucket: { ratePerMinute: 6, burst: 10 } }),
      world([{ n: 1 }], {
        at: T0 + 30_000,
        nodes: gone(5),
        marks: marks(5),
        bucket: { value: { tokens: 0.5, at: T0 }, modifyIndex: 77 },
      }),
    );
    // 0.5 + 3 tokens after 30 s: three deregistrations.
    expect(types(plan)).toEqual(['deregister', 'deregister', 'deregister', 'purge-ledger']);
    expect(plan.bucket).toEqual({ state: { tokens: 0.5, at: T0 + 30_000 }, cas: 77 });
  });

  it('starts empty from an unreadable stored bucket, and repairs it', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1 }], { nodes: gone(1), marks: marks(1), bucket: { value: null, modifyIndex: 5 } }),
    );
    expect(acts(plan)).toEqual([]);
    expect(plan.report.refused.map((r) => r.reason)).toEqual(['rate-limited']);
    expect(plan.bucket).toEqual({ state: { tokens: 0, at: T0 }, cas: 5 });
  });

  it('writes no bucket when nothing took a token', () => {
    expect(planSweep(config(), world([{ n: 1 }])).bucket).toBeNull();
  });
});

describe('planSweep: report and metrics', () => {
  it('summarises groups and publishes the metric points', () => {
    const obs = world(
      [
        { n: 1 },
        { n: 2, node: 'critical' },
        { n: 3, node: null },
        { n: 4, status: 'STAGING', action: 'CREATING', node: null },
        { n: 100, zone: ZB, node: 'warning' },
      ],
      { nodes: [node('backend-a-gone-1', id(901))], marks: [[id(901), { absentCount: 2 }]] },
    );
    const plan = planSweep(config(), obs);
    expect(plan.report.seen).toEqual({ groups: 2, members: 5, nodes: 4, nodesInGroups: 4 });
    expect(plan.report.groups).toEqual([
      { key: GA, role: 'backend', isStable: true, members: 4, running: 3, healthy: 1, broken: 0, orphans: 0 },
      { key: GB, role: 'backend', isStable: true, members: 1, running: 1, healthy: 0, broken: 0, orphans: 0 },
    ]);
    expect(plan.report.healthyMembers).toEqual([
      { role: 'backend', zone: ZA, healthy: 1 },
      { role: 'backend', zone: ZB, healthy: 0 },
    ]);
    expect(metricPoints(plan, 1234)).toEqual([
      { type: 'custom.googleapis.com/ilb/healthy_members', labels: { role: 'backend', zone: ZA }, value: 1 },
      { type: 'custom.googleapis.com/ilb/healthy_members', labels: { role: 'backend', zone: ZB }, value: 0 },
      { type: 'custom.googleapis.com/ilb/stale_nodes', labels: {}, value: 1 },
      { type: 'custom.googleapis.com/ilb/orphans', labels: {}, value: 0 },
      { type: 'custom.googleapis.com/ilb/actions', labels: { action: 'deregister' }, value: 1 },
      { type: 'custom.googleapis.com/ilb/actions', labels: { action: 'recreate' }, value: 0 },
      { type: 'custom.googleapis.com/ilb/actions', labels: { action: 'delete-drain' }, value: 0 },
      { type: 'custom.googleapis.com/ilb/actions', labels: { action: 'delete-record' }, value: 0 },
      { type: 'custom.googleapis.com/ilb/actions', labels: { action: 'purge-ledger' }, value: 1 },
      { type: 'custom.googleapis.com/ilb/actions', labels: { action: 'remove-unproven' }, value: 0 },
      // The stale node no event removed.
      { type: 'custom.googleapis.com/ilb/sweep_repaired_without_event', labels: { kind: 'stale' }, value: 1 },
      {
        type: 'custom.googleapis.com/ilb/sweep_repaired_without_event',
        labels: { kind: 'broken' },
        value: 0,
      },
      { type: 'custom.googleapis.com/ilb/sweep_duration_ms', labels: {}, value: 1234 },
    ]);
  });

  it('counts refused actions by reason', () => {
    const plan = planSweep(
      config(),
      world([{ n: 1 }], { reads: [{ source: 'kv', what: 'marks', status: 'failed' }] }),
    );
    expect(metricPoints(plan, 5)).toContainEqual({
      type: 'custom.googleapis.com/ilb/refused_actions',
      labels: { reason: 'incomplete-read' },
      value: 1,
    });
  });
});
