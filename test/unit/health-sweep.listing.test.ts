/**
 * The node listing over the cap (one VM may put unbounded metadata and tagged addresses on its own
 * node): read-fallback.ts lists the nodes from the gossip members, each under a per-node cap, and
 * the planner, knowing catalog-only nodes are missing, never acts on an absence it cannot prove.
 */
import fc from 'fast-check';
import { AnswerTooLargeError, type CatalogNode, type Member } from '../../shared/consul';
import type { NodeHealth, Observation } from '../../shared/health-sweep/observe';
import { planSweep } from '../../shared/health-sweep/plan';
import type { SweepConsul } from '../../shared/health-sweep/read';
import {
  config,
  id,
  instName,
  node,
  observeConsul,
  perNodeRead,
  T0,
  world,
  ZA,
  ZB,
} from './health-sweep.world';

const degraded = (obs: Observation): Observation => ({
  ...obs,
  listing: { source: 'members', detail: 'answer larger than 8388608 bytes' },
});
const boot = 600_000;

describe('planSweep with the nodes listed from the gossip members', () => {
  it('does not judge a member whose node it did not list: no orphan, its mark kept, gates as strict as with all nodes', () => {
    // 1 without a listed node (missing since T0, past the boot grace), 2 broken, 3 healthy.
    const obs = world([{ n: 1, node: null }, { n: 2, node: 'critical' }, { n: 3 }], {
      at: T0 + boot,
      marks: [
        [id(1), { absentCount: 0, missingSince: T0 }],
        [id(2), { absentCount: 0, criticalSince: T0 }],
      ],
    });
    const cfg = config({ repairOrphans: true });
    // With the full listing, 1 is an orphan and recreated (2 dead of 3 needs a looser zone threshold).
    const loose = config({ repairOrphans: true }, { zoneDeadThreshold: 0.9 });
    const full = planSweep(loose, obs);
    expect(full.actions.filter((a) => a.type === 'recreate').map((a) => a.name)).toEqual([
      instName(2),
      instName(1),
    ]);

    const plan = planSweep(loose, degraded(obs));
    expect(plan.report.reportOnly).toEqual([]);
    expect(plan.report.listing).toEqual({ source: 'members', detail: 'answer larger than 8388608 bytes' });
    expect(plan.report.orphans).toEqual([]);
    expect(plan.actions.filter((a) => a.type === 'recreate').map((a) => a.name)).toEqual([instName(2)]);
    // Its mark neither advanced nor dropped.
    expect(plan.marks.filter((m) => m.instanceId === id(1))).toEqual([]);

    // It counts dead in its zone as it would with the full listing (2 of 3: partitioned; the only
    // zone, so the sweep only reports, as it would with all nodes), never alive.
    const gated = planSweep(cfg, degraded(obs));
    expect(gated.report.zones).toEqual([{ zone: ZA, running: 3, dead: 2, partitioned: true }]);
    expect(gated.report.reportOnly).toEqual(['all-zones-dead']);
    expect(planSweep(cfg, obs).report.reportOnly).toEqual(['all-zones-dead']);

    // Healthy minimum 2 of 3: the unlisted member may be dead, so the recreate of 2 is refused.
    const strict = planSweep(
      config({ repairOrphans: true }, { healthyMinimum: 2, zoneDeadThreshold: 0.9 }),
      degraded(obs),
    );
    expect(strict.actions.filter((a) => a.type === 'recreate')).toEqual([]);
    expect(strict.report.refused.map((r) => r.reason)).toEqual(['healthy-minimum']);
  });

  it('judges a member only by the node named like it: another listed claim of its id does not make it broken', () => {
    // A VM copies member 1's id onto its own node, critical; 1's own node is not listed.
    const copy = node('backend-a-77', id(1), 'critical');
    const obs = world([{ n: 1, node: null }, { n: 2 }, { n: 3 }], {
      at: T0 + boot,
      nodes: [copy],
      marks: [[id(1), { absentCount: 0, criticalSince: T0 }]],
    });
    const plan = planSweep(config(), degraded(obs));
    expect(plan.report.broken).toEqual([]);
    expect(plan.actions.map((a) => a.type)).toEqual(['purge-ledger']);
    expect(plan.marks.filter((m) => m.instanceId === id(1))).toEqual([]);
  });

  it('still removes a listed stale node, and reaps no leftover nor advances its count', () => {
    const gone = node('backend-a-9', '4242');
    const obs = world([{ n: 1 }, { n: 2 }], {
      nodes: [gone],
      marks: [
        ['4242', { absentCount: 1 }],
        ['5151', { absentCount: 5 }],
      ],
      lookups: [['4242', { found: false }]],
      // 5151: an id no listed node claims (a catalog-only node may), past N sweeps.
      drains: [['backend-a-8', '5151']],
      records: [['5151']],
    });
    const full = planSweep(config(), obs);
    expect(full.actions.map((a) => a.type)).toEqual([
      'deregister',
      'delete-drain',
      'delete-record',
      'purge-ledger',
    ]);

    const plan = planSweep(config(), degraded(obs));
    expect(plan.actions).toEqual([
      expect.objectContaining({ type: 'deregister', node: 'backend-a-9', reason: 'not-found' }),
      { type: 'purge-ledger' },
    ]);
    expect(plan.report.leftovers).toEqual([]);
    expect(plan.report.drainLeftovers).toEqual([]);
    // The listed node's count advances as usual; the unlisted id's mark stays as it was.
    expect(plan.marks).toEqual([{ op: 'put', instanceId: '4242', mark: { absentCount: 2 }, cas: 7 }]);
  });
});

describe('observeWorld: the node listing over the cap', () => {
  const cap = 4096;
  const member = (name: string, status = 1): Member => ({
    name,
    address: `10.0.0.${name.length}`,
    status,
    tags: {},
  });
  const entry = (name: string, meta: Record<string, string> = {}) => ({
    name,
    address: '10.1.0.1',
    meta,
    modifyIndex: 5,
    services: [],
  });
  const fake = (
    members: Member[] | Error,
    perNode: (name: string) => ReturnType<typeof entry> | null | Error,
  ) => {
    const nodeReads: Array<{ name: string; maxResponseBytes?: number }> = [];
    const consul: SweepConsul = {
      agent: {
        members: async () => {
          if (members instanceof Error) throw members;
          return members;
        },
      },
      catalog: {
        nodes: async (): Promise<CatalogNode[]> => {
          throw new AnswerTooLargeError(8 * 1024 * 1024);
        },
        node: perNodeRead(nodeReads, perNode),
      },
      health: { state: async () => [], node: async () => [] },
      kv: { get: async () => null, keys: async () => [], list: async () => [] },
    };
    return { consul, nodeReads };
  };
  const observe = (consul: SweepConsul, maxNodeReads = 10) =>
    observeConsul(consul, { nodeChecksMaxBytes: cap, nodeMaxBytes: cap, maxNodeReads });

  it('lists the valid, distinct member names node by node under the cap; one over it is oversized, the read not failed', async () => {
    const { consul, nodeReads } = fake(
      [
        member('consul-1'),
        member('backend-a'),
        member('backend-a'),
        member('backend-b', 4),
        member('Bad_Name'),
        member('backend-c'),
      ],
      (name) =>
        name === 'backend-b' ? new AnswerTooLargeError(cap) : name === 'backend-c' ? null : entry(name),
    );
    const { obs, calls } = observe(consul);
    const o = await obs;
    expect(o.reads).toEqual([]);
    expect(o.listing).toEqual({
      source: 'members',
      detail: expect.stringMatching(
        /3 nodes listed from 4 gossip members, 1 oversized; catalog-only nodes not seen/,
      ),
    });
    expect(o.nodes.map((n) => [n.name, n.health, n.address])).toEqual([
      ['backend-a', 'passing', '10.1.0.1'],
      ['backend-b', 'unknown', '10.0.0.9'],
      ['consul-1', 'passing', '10.1.0.1'],
    ]);
    expect(nodeReads.map((r) => r.name).sort()).toEqual(['backend-a', 'backend-b', 'backend-c', 'consul-1']);
    expect(nodeReads.every((r) => r.maxResponseBytes === cap)).toBe(true);
    // catalog, state, members, 2 key lists, drain list, bucket: 7; then 4 per-node reads.
    expect(calls.consul).toBe(11);
  });

  it('fails the read (report-only) without the members, past maxNodeReads, or when a node read fails otherwise', async () => {
    const noMembers = await observe(fake(new Error('connect ECONNREFUSED'), (n) => entry(n)).consul).obs;
    expect(noMembers.reads.map((r) => [r.what, r.status])).toEqual([
      ['agent/members', 'failed'],
      ['catalog/nodes', 'failed'],
    ]);
    const many = await observe(fake([member('a-1'), member('a-2'), member('a-3')], (n) => entry(n)).consul, 2)
      .obs;
    expect(many.reads.map((r) => [r.what, r.status, /3 members/.test(r.detail ?? '')])).toEqual([
      ['catalog/nodes', 'failed', true],
    ]);
    const broken = await observe(
      fake([member('a-1'), member('a-2')], (n) =>
        n === 'a-1' ? new Error('connect ECONNREFUSED') : entry(n),
      ).consul,
    ).obs;
    expect(broken.reads).toEqual([expect.objectContaining({ what: 'catalog/node/a-1', status: 'failed' })]);
    expect(broken.listing).toBeDefined();
  });
});

describe('planSweep: a listing without catalog-only nodes acts only on what the full listing would', () => {
  const health = fc.constantFrom<NodeHealth | null>('passing', 'critical', 'critical', 'maintenance', null);
  const arb = fc.record({
    instances: fc.uniqueArray(
      fc.record({ n: fc.integer({ min: 1, max: 12 }), zone: fc.constantFrom(ZA, ZB), node: health }),
      { selector: (i) => i.n, maxLength: 10 },
    ),
    others: fc.array(
      fc.record({
        n: fc.integer({ min: 1, max: 20 }),
        zone: fc.constantFrom(ZA, ZB),
        reuseName: fc.boolean(),
      }),
      { maxLength: 6 },
    ),
    /** Per node, in order: whether it is catalog-only (no gossip member), so unlisted when degraded. */
    catalogOnly: fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
    marks: fc.array(
      fc.record({
        n: fc.integer({ min: 1, max: 20 }),
        absentCount: fc.integer({ min: 0, max: 4 }),
        ago: fc.integer({ min: 0, max: 30 }),
      }),
      { maxLength: 10 },
    ),
    drains: fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 4 }),
    records: fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 4 }),
    lookups: fc.array(fc.record({ n: fc.integer({ min: 1, max: 20 }), found: fc.boolean() }), {
      maxLength: 6,
    }),
    zoneDeadThreshold: fc.constantFrom(0.3, 0.55, 1),
    healthyMinimum: fc.integer({ min: 0, max: 3 }),
  });

  it('every action of the degraded plan is a candidate of the full one, and it reports only when that does', () => {
    fc.assert(
      fc.property(arb, (c) => {
        const cfg = config(
          { repairOrphans: true },
          { absentSweeps: 2, zoneDeadThreshold: c.zoneDeadThreshold, healthyMinimum: c.healthyMinimum },
        );
        const at = T0 + 20 * 60_000;
        const base = world(c.instances, {
          at,
          nodes: c.others.map((o) => node(o.reuseName ? instName(o.n, o.zone) : `backend-x-${o.n}`, id(o.n))),
          marks: c.marks.map((m) => [
            id(m.n),
            {
              absentCount: m.absentCount,
              criticalSince: at - m.ago * 60_000,
              missingSince: at - m.ago * 60_000,
            },
          ]),
          drains: c.drains.map((n) => [instName(n), id(n)]),
          records: c.records.map((n) => [id(n)]),
          lookups: c.lookups.map((l) => [
            id(l.n),
            l.found ? { found: true, id: id(l.n), status: 'RUNNING' } : { found: false },
          ]),
        });
        const only = new Set(base.nodes.filter((_, i) => c.catalogOnly[i % 16]).map((n) => n.name));
        const nodes = base.nodes.map((n) => (only.has(n.name) ? { ...n, serf: 'absent' as const } : n));
        const members = new Map(
          nodes.filter((n) => !only.has(n.name)).map((n) => [n.name, { address: n.address, status: 1 }]),
        );
        const full = planSweep(cfg, { ...base, nodes, members });
        const partial = planSweep(
          cfg,
          degraded({ ...base, nodes: nodes.filter((n) => !only.has(n.name)), members }),
        );
        const candidates = new Set(
          [...full.report.actions, ...full.report.refused.map((r) => r.action)].map((a) => JSON.stringify(a)),
        );
        for (const a of partial.actions) expect(candidates).toContain(JSON.stringify(a));
        if (full.report.reportOnly.length > 0) expect(partial.actions).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
