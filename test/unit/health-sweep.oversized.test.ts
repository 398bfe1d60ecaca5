/**
 * A node whose checks are over the per-node cap (one VM may register checks of any size on its own
 * node): read.ts marks it oversized, and the planner acts on nothing of it while every other node
 * is swept as usual, with the zone-dead and healthy-minimum gates not skewed by it.
 */
import { AnswerTooLargeError, type CatalogNode, type HealthCheck } from '../../shared/consul';
import { normaliseNodes, type SweepNode } from '../../shared/health-sweep/observe';
import { planSweep } from '../../shared/health-sweep/plan';
import { metricPoints } from '../../shared/health-sweep/metrics';
import { sweepChecksFilter, type SweepConsul } from '../../shared/health-sweep/read';
import { config, id, instName, node, observeConsul, perNodeRead, T0, world, ZA } from './health-sweep.world';

const oversized = (n: SweepNode): SweepNode => ({ ...n, health: 'unknown', serf: 'unknown' });
const grace = 300_000;

describe('planSweep with an oversized node', () => {
  it('acts on nothing of it, and neither counts its member dead in its zone nor running for the minimum', () => {
    // Zone A: 1 oversized, 2 broken (critical past the grace), 3 healthy.
    const obs = world([{ n: 1 }, { n: 2, node: 'critical' }, { n: 3 }], {
      at: T0 + grace,
      marks: [[id(2), { absentCount: 0, criticalSince: T0 }]],
    });
    obs.nodes = obs.nodes.map((n) => (n.name === instName(1) ? oversized(n) : n));
    const plan = planSweep(config(), obs);
    expect(plan.report.reportOnly).toEqual([]);
    // Counted dead it would make 2 of 3 (partitioned: nothing repaired); here 1 of 2.
    expect(plan.report.zones).toEqual([{ zone: ZA, running: 2, dead: 1, partitioned: false }]);
    expect(plan.actions.filter((a) => a.type === 'recreate').map((a) => a.name)).toEqual([instName(2)]);
    expect(JSON.stringify(plan.actions)).not.toContain(instName(1));
    expect(plan.report.identity).toEqual([{ node: instName(1), reason: 'oversized', address: '10.0.0.1' }]);

    // Healthy minimum 2 of the 3 members: counted running, the oversized one would let the recreate
    // through (3 - 1 >= 2); unknown, it may be dead, so the recreate is refused (2 - 1 < 2).
    const strict = planSweep(config({}, { healthyMinimum: 2 }), obs);
    expect(strict.actions.filter((a) => a.type === 'recreate')).toEqual([]);
    expect(strict.report.refused.map((r) => r.reason)).toEqual(['healthy-minimum']);
  });

  it('never deregisters, looks up or counts absent an oversized node whose id is in no group', () => {
    const gone = oversized(node('backend-a-9', '4242'));
    const obs = world([{ n: 1 }, { n: 2 }], {
      nodes: [gone],
      marks: [['4242', { absentCount: 7 }]],
      lookups: [['4242', { found: false }]],
      members: [],
    });
    const plan = planSweep(config(), obs);
    expect(plan.report.reportOnly).toEqual([]);
    expect(plan.actions.map((a) => a.type)).toEqual(['purge-ledger']);
    expect(plan.report.stale).toEqual([]);
    expect(plan.report.absent).toEqual([]);
    // Not a gossip member and named like a backend: still no remove-unproven, its checks unread.
    expect(plan.report.identity).toEqual([{ node: 'backend-a-9', reason: 'oversized', address: '10.0.0.1' }]);
    // Its mark stays as it was: the sweep judged nothing about it.
    expect(plan.marks.filter((m) => m.instanceId === '4242')).toEqual([]);
    const points = metricPoints(plan, 1).filter((p) => p.type.endsWith('/identity_refused'));
    expect(points.map((p) => [p.labels.reason, p.value])).toEqual([['oversized', 1]]);
  });

  it('keeps the mark of its member (a critical grace is not restarted by an unreadable sweep)', () => {
    const obs = world([{ n: 1 }, { n: 2 }, { n: 3 }], {
      marks: [[id(1), { absentCount: 0, criticalSince: T0 - 1000 }]],
    });
    obs.nodes = obs.nodes.map((n) => (n.name === instName(1) ? oversized(n) : n));
    expect(planSweep(config(), obs).marks).toEqual([]);
  });
});

describe('normaliseNodes with oversized nodes', () => {
  it('marks their health and serf unknown whatever checks were read', () => {
    const catalog = (name: string) => ({ Node: name, Address: '10.0.0.1', Meta: {}, ModifyIndex: 3 });
    const { nodes } = normaliseNodes(
      [catalog('a'), catalog('b')],
      [{ Node: 'b', CheckID: 'serfHealth', Status: 'passing', ServiceID: '' }],
      new Set(['a']),
    );
    expect(nodes.map((n) => [n.name, n.health, n.serf])).toEqual([
      ['a', 'unknown', 'unknown'],
      ['b', 'passing', 'passing'],
    ]);
  });
});

describe('observeWorld: checks over the cap', () => {
  const cap = 4096;
  const check = (node: string, status = 'passing'): HealthCheck => ({
    Node: node,
    CheckID: 'serfHealth',
    Name: 'Serf Health Status',
    Status: status,
  });
  const fake = (names: string[], perNode: (name: string) => HealthCheck[] | Error) => {
    const nodeReads: Array<{ name: string; filter?: string; maxResponseBytes?: number }> = [];
    const consul: SweepConsul = {
      agent: { members: async () => [] },
      catalog: {
        node: async () => null,
        nodes: async () =>
          names.map((name): CatalogNode => ({ name, address: '10.0.0.1', meta: {}, modifyIndex: 1 })),
      },
      health: {
        state: async () => {
          throw new AnswerTooLargeError(8 * 1024 * 1024);
        },
        node: perNodeRead(nodeReads, perNode),
      },
      kv: { get: async () => null, keys: async () => [], list: async () => [] },
    };
    return { consul, nodeReads };
  };
  const observe = (consul: SweepConsul, maxNodeReads = 10) =>
    observeConsul(consul, { nodeChecksMaxBytes: cap, nodeMaxBytes: cap, maxNodeReads });

  it('reads node by node with the filter and the per-node cap; one over it is oversized, the read complete', async () => {
    const { consul, nodeReads } = fake(['a', 'b', 'c'], (name) =>
      name === 'b' ? new AnswerTooLargeError(cap) : [check(name, name === 'c' ? 'critical' : 'passing')],
    );
    const { obs, calls } = observe(consul);
    const o = await obs;
    expect(o.reads).toEqual([]);
    expect(o.nodes.map((n) => [n.name, n.health])).toEqual([
      ['a', 'passing'],
      ['b', 'unknown'],
      ['c', 'critical'],
    ]);
    expect(nodeReads.map((r) => r.name).sort()).toEqual(['a', 'b', 'c']);
    expect(nodeReads.every((r) => r.filter === sweepChecksFilter && r.maxResponseBytes === cap)).toBe(true);
    // catalog, state, members, 2 key lists, drain list, bucket: 7; then 3 per-node reads.
    expect(calls.consul).toBe(10);
  });

  it('fails the read (report-only) past maxNodeReads, or when a per-node read fails otherwise', async () => {
    const many = await observe(fake(['a', 'b', 'c'], (n) => [check(n)]).consul, 2).obs;
    expect(many.reads).toEqual([
      expect.objectContaining({
        what: 'health/state/any',
        status: 'failed',
        detail: expect.stringMatching(/3 nodes/),
      }),
    ]);
    const broken = await observe(
      fake(['a', 'b'], (n) => (n === 'a' ? new Error('connect ECONNREFUSED') : [check(n)])).consul,
    ).obs;
    expect(broken.reads).toEqual([expect.objectContaining({ what: 'health/node/a', status: 'failed' })]);
  });
});
