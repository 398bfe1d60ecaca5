/** Builders of sweep observations for the health-sweep planner tests. */
import type { GroupsApi } from '../../shared/gcp/groups';
import type { InstanceLookup, InstancesApi } from '../../shared/gcp/instances';
import { noCalls } from '../../shared/health-sweep/calls';
import { parseHealthSweepConfig, type HealthSweepConfig } from '../../shared/health-sweep/config';
import type {
  GroupObservation,
  NodeHealth,
  Observation,
  ReadOutcome,
  Stored,
  SweepMark,
  SweepNode,
} from '../../shared/health-sweep/observe';
import { observeWorld, type SweepConsul } from '../../shared/health-sweep/read';
import { healthSweepKeys } from '../../shared/health-sweep/state';
import type { BucketState } from '../../shared/health-sweep/token-bucket';

export const P = 'ilb-demo';
export const ZA = 'us-central1-a';
export const ZB = 'us-central1-b';
export const GA = `projects/${P}/zones/${ZA}/instanceGroupManagers/backend-a`;
export const GB = `projects/${P}/zones/${ZB}/instanceGroupManagers/backend-b`;
export const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
/** Ids beyond 2^53, as real ones are. */
export const id = (n: number) => (4_512_345_678_901_234_000n + BigInt(n)).toString();

export function config(
  extra: Record<string, unknown> = {},
  thresholds: Record<string, unknown> = {},
): HealthSweepConfig {
  return parseHealthSweepConfig({
    groups: [
      { project: P, zone: ZA, name: 'backend-a', role: 'backend' },
      { project: P, zone: ZB, name: 'backend-b', role: 'backend' },
    ],
    thresholds: {
      absentSweeps: 3,
      brokenGraceSeconds: 300,
      bootGraceSeconds: 600,
      maxRecreations: 10,
      healthyMinimum: 0,
      tokenBucket: { ratePerMinute: 6, burst: 100 },
      ...thresholds,
    },
    ...extra,
  });
}

export interface Inst {
  n: number;
  zone?: string;
  status?: string;
  action?: string;
  /** The instance's Consul node: null for none. */
  node?: NodeHealth | null;
  /** The node's name when it differs from the instance's. */
  nodeName?: string;
}

export const instName = (n: number, zone = ZA) => `backend-${zone.slice(-1)}-${n}`;
export const instUrl = (n: number, zone = ZA) =>
  `https://compute.googleapis.com/compute/v1/projects/${P}/zones/${zone}/instances/${instName(n, zone)}`;

export function node(
  name: string,
  instanceId: string,
  health: NodeHealth = 'passing',
  zone = ZA,
  modifyIndex = 100,
): SweepNode {
  return {
    name,
    address: '10.0.0.1',
    modifyIndex,
    identity: { instanceId, zone, project: P, group: `backend-${zone.slice(-1)}`, role: 'backend' },
    health,
    serf: 'passing',
    foreignChecks: 0,
  };
}

export interface WorldExtras {
  at?: number;
  nodes?: SweepNode[];
  marks?: Array<[string, SweepMark | null, number?]>;
  /** Record ids (ModifyIndex 9 unless given). */
  records?: Array<[string, number?]>;
  /** Drain list entries: node name, the id it names (null: an invalid value), ModifyIndex (11). */
  drains?: Array<[string, string | null, number?]>;
  bucket?: Stored<BucketState>;
  lookups?: Array<[string, InstanceLookup]>;
  reads?: readonly ReadOutcome[];
  unstable?: readonly string[];
  /** Groups left out of the observation. */
  unread?: readonly string[];
  /** Gossip members: node name, address (status 1 unless given); absent: members not read. */
  members?: Array<[string, string, number?]>;
}

/** A world of instances in the two backend groups (by zone) and their nodes. */
export function world(instances: Inst[], x: WorldExtras = {}): Observation {
  const groups: GroupObservation[] = [GA, GB]
    .filter((key) => !x.unread?.includes(key))
    .map((key) => ({ key, isStable: !x.unstable?.includes(key), members: [] }));
  const nodes: SweepNode[] = [];
  for (const i of instances) {
    const zone = i.zone ?? ZA;
    const group = groups.find((g) => g.key === (zone === ZA ? GA : GB));
    group?.members.push({
      id: id(i.n),
      name: instName(i.n, zone),
      project: P,
      zone,
      instance: instUrl(i.n, zone),
      instanceStatus: i.status ?? 'RUNNING',
      currentAction: i.action ?? 'NONE',
    });
    const health = i.node === undefined ? 'passing' : i.node;
    if (health !== null)
      nodes.push(node(i.nodeName ?? instName(i.n, zone), id(i.n), health, zone, 1000 + i.n));
  }
  return {
    at: x.at ?? T0,
    members: x.members
      ? new Map(x.members.map(([name, address, status]) => [name, { address, status: status ?? 1 }]))
      : null,
    groups,
    nodes: [...nodes, ...(x.nodes ?? [])],
    marks: new Map(
      (x.marks ?? []).map(([k, value, modifyIndex]) => [k, { value, modifyIndex: modifyIndex ?? 7 }]),
    ),
    records: new Map((x.records ?? []).map(([k, modifyIndex]) => [k, modifyIndex ?? 9])),
    drains: new Map(
      (x.drains ?? []).map(([name, instanceId, modifyIndex]) => [
        name,
        {
          value: instanceId === null ? null : { instanceId, since: T0 - 1000 },
          modifyIndex: modifyIndex ?? 11,
        },
      ]),
    ),
    bucket: x.bucket ?? { value: null, modifyIndex: 0 },
    lookups: new Map(x.lookups ?? []),
    reads: [...(x.reads ?? [])],
  };
}

/** observeWorld over `consul`, with no group members and Compute answering 404, under `reads`. */
export function observeConsul(consul: SweepConsul, reads: HealthSweepConfig['reads']) {
  const calls = noCalls();
  const groups: GroupsApi = {
    listManagedInstances: async () => [],
    isStable: async () => true,
    recreate: async () => undefined,
  };
  const instances: InstancesApi = { get: async () => ({ found: false }) };
  const obs = observeWorld(
    { consul, groups, instances, keys: healthSweepKeys('p/'), calls, lookupLimit: 5 },
    { ...config(), reads },
    T0,
  );
  return { obs, calls };
}

/** A fake per-node read: records each call, answers `perNode(name)`, throwing it when an Error. */
export const perNodeRead =
  <A, O extends object>(calls: Array<{ name: string } & O>, perNode: (name: string) => A | Error) =>
  async (name: string, options?: O): Promise<A> => {
    calls.push({ name, ...(options ?? ({} as O)) });
    const answer = perNode(name);
    if (answer instanceof Error) throw answer;
    return answer;
  };
