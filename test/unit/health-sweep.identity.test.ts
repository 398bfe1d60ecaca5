import { parseHealthSweepConfig } from '../../shared/health-sweep/config';
import { planSweep } from '../../shared/health-sweep/plan';
import { metricPoints } from '../../shared/health-sweep/metrics';
import { GA, id, instName, node, P, world, ZA } from './health-sweep.world';

const config = (extra: Record<string, unknown> = {}) =>
  parseHealthSweepConfig({
    groups: [
      { project: P, zone: ZA, name: 'backend-a', role: 'backend' },
      { project: P, zone: 'us-central1-b', name: 'backend-b', role: 'backend' },
    ],
    thresholds: { absentSweeps: 1, brokenGraceSeconds: 0 },
    ...extra,
  });

/** Every instance's node a gossip member at its address (node() gives 10.0.0.1). */
const allMembers = (ns: number[]): Array<[string, string]> => ns.map((n) => [instName(n), '10.0.0.1']);

describe('identity of managed-role nodes', () => {
  it('deregisters a catalog-only node of a watched role (no member, no serfHealth), rate-limited', () => {
    const rogue = { ...node('backend-x1', '999', 'passing'), serf: 'absent' as const, identity: undefined };
    const forgedSerf = { ...node('backend-x2', '998', 'passing'), identity: undefined };
    const plan = planSweep(
      config(),
      world([{ n: 1 }, { n: 2 }, { n: 3 }], { nodes: [rogue, forgedSerf], members: allMembers([1, 2, 3]) }),
    );
    expect(plan.actions.filter((a) => a.type === 'remove-unproven')).toEqual([
      { type: 'remove-unproven', node: 'backend-x1', modifyIndex: 100, zone: '' },
    ]);
    // The one with a forged serfHealth check: Consul's leader reaps it itself (reported only).
    expect(plan.report.identity).toEqual([
      { node: 'backend-x1', reason: 'not-a-member', address: '10.0.0.1' },
      { node: 'backend-x2', reason: 'no-identity', address: '10.0.0.1' },
    ]);
    const points = metricPoints(plan, 5).filter((p) => p.type.endsWith('/identity_refused'));
    expect(points.map((p) => [p.labels.reason, p.value])).toEqual([
      ['no-identity', 1],
      ['not-a-member', 1],
    ]);
  });

  it('never deregisters an alive member whose metadata was rewritten to a gone id', () => {
    const victim = node(instName(2), '4242', 'passing');
    const obs = world([{ n: 1 }, { n: 2, node: null }, { n: 3 }], {
      nodes: [victim],
      members: allMembers([1, 2, 3]),
      lookups: [['4242', { found: true, id: id(2), status: 'RUNNING' }]],
    });
    const plan = planSweep(config(), obs);
    expect(plan.actions.filter((a) => a.type === 'deregister')).toEqual([]);
    expect(plan.report.identity).toContainEqual({
      node: instName(2),
      reason: 'identity-disputed',
      address: '10.0.0.1',
    });
    // Without gossip backing it (the member failed), the same node is stale as before.
    const failed = planSweep(config(), {
      ...obs,
      members: new Map([[instName(2), { address: '10.0.0.1', status: 4 }]]),
    });
    expect(failed.actions.filter((a) => a.type === 'deregister').map((a) => a.type)).toEqual(['deregister']);
    // Nor when Compute has no instance of that name: gossip may not have seen the agent die yet.
    const gone = planSweep(config(), { ...obs, lookups: new Map([['4242', { found: false }]]) });
    expect(gone.actions.filter((a) => a.type === 'deregister').map((a) => a.type)).toEqual(['deregister']);
  });

  it('a forged critical check under a foreign id recreates nothing', () => {
    const obs = world([{ n: 1 }, { n: 2 }, { n: 3 }], { members: allMembers([1, 2, 3]) });
    const nodes = obs.nodes.map((n) => (n.name === instName(2) ? { ...n, foreignChecks: 1 } : n));
    const plan = planSweep(config(), { ...obs, nodes });
    expect(plan.actions.filter((a) => a.type === 'recreate')).toEqual([]);
    expect(plan.report.identity).toEqual([
      { node: instName(2), reason: 'foreign-check', address: '10.0.0.1' },
    ]);
  });

  it('reports a member whose catalog address is not its gossip address; bounded findings', () => {
    const obs = world([{ n: 1 }, { n: 2 }], {
      members: [
        [instName(1), '10.0.0.1'],
        [instName(2), '10.9.9.9'],
      ],
    });
    expect(planSweep(config(), obs).report.identity).toEqual([
      { node: instName(2), reason: 'address-mismatch', address: '10.0.0.1' },
    ]);
    const many = Array.from({ length: 30 }, (_, i) => ({
      ...node(`backend-r${i}`, String(900 + i)),
      serf: 'absent' as const,
    }));
    const capped = planSweep(
      config({ identity: { maxFindings: 5 } }),
      world([{ n: 1 }], { nodes: many, members: [] }),
    );
    expect(capped.report.identity).toHaveLength(5);
    expect(capped.actions.filter((a) => a.type === 'remove-unproven').length).toBeLessThanOrEqual(5);
    const off = planSweep(
      config({ identity: { removeUnproven: false } }),
      world([{ n: 1 }], { nodes: many, members: [] }),
    );
    expect(off.actions.filter((a) => a.type === 'remove-unproven')).toEqual([]);
  });

  it('without a members read, nothing acts on identity', () => {
    const rogue = { ...node('backend-x1', '999'), serf: 'absent' as const };
    const plan = planSweep(config(), world([{ n: 1 }], { nodes: [rogue] }));
    expect(plan.actions.filter((a) => a.type === 'remove-unproven')).toEqual([]);
    expect(GA).toContain('backend-a');
  });
});
