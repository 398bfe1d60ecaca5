import { z } from 'zod';
import { nodeMetaKeys } from '../contract';
import type { InstanceLookup } from '../gcp/instances';
import { computeNamePattern, instanceIdPattern } from '../membership';
import { rolePattern, scopeHolds, zonePattern, type WatchedGroup } from './config';
import type { BucketState } from './token-bucket';

/**
 * What one sweep sees, read once (pages, not per node), and the pure normalisation of the raw
 * answers into it. Everything read from Consul (node names, metadata, checks, KV) is attacker-
 * controlled: it is validated here, and whatever fails validation can only make the sweep do less.
 *
 * Compute v1 shapes, checked against Google's reference for `instanceGroupManagers.listManagedInstances`
 * (https://cloud.google.com/workflows/docs/reference/googleapis/compute/v1/instanceGroupManagers/listManagedInstances),
 * its response (`managedInstances[]` + `nextPageToken`,
 * https://cloud.google.com/python/docs/reference/compute/latest/google.cloud.compute_v1.types.InstanceGroupManagersListManagedInstancesResponse),
 * `ManagedInstance` (https://cloud.google.com/php/docs/reference/cloud-compute/latest/V1.ManagedInstance,
 * and `google.cloud.compute.v1.ManagedInstance` in @google-cloud/compute's protos.json); the same for
 * `regionInstanceGroupManagers`:
 * - `id`: uint64 (a decimal string in REST JSON); may exceed 2^53, so it stays a string (the Node
 *   client types it `number|Long|string`: its adapter passes a string);
 * - `instance`: the instance's URL (`…/projects/<p>/zones/<z>/instances/<name>`);
 * - `instanceStatus`: PROVISIONING, STAGING, RUNNING, STOPPING, STOPPED, SUSPENDING, SUSPENDED,
 *   REPAIRING, TERMINATED, DEPROVISIONING, PENDING…; empty while the instance does not exist (with `id`);
 * - `currentAction`: NONE, CREATING, CREATING_WITHOUT_RETRIES, RECREATING, DELETING, ABANDONING,
 *   RESTARTING, REFRESHING, VERIFYING…;
 * and the group's `status.isStable` (`instanceGroupManagers.get`).
 */

export type ReadSource = 'compute' | 'consul' | 'kv';
export type ReadStatus = 'complete' | 'partial' | 'failed';

/** One read of the sweep: any that is not complete makes the whole sweep report-only. */
export interface ReadOutcome {
  source: ReadSource;
  /** e.g. a group key, `catalog/nodes`, `health/state/any`, a KV prefix. */
  what: string;
  status: ReadStatus;
  detail?: string;
}

export interface ManagedMember {
  /** Decimal uint64; absent while the instance does not exist yet. */
  id?: string;
  name: string;
  project: string;
  zone: string;
  /** The instance URL as Compute gave it (what `recreateInstances` takes). */
  instance: string;
  /** Empty while the instance does not exist. */
  instanceStatus?: string;
  currentAction: string;
}

export interface GroupObservation {
  /** WatchedGroup.key */
  key: string;
  isStable: boolean;
  members: ManagedMember[];
}

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface NodeCheck {
  checkId: string;
  /** Empty for node-level checks (serfHealth, maintenance). */
  serviceId: string;
  status: CheckStatus;
}

/** Identity an agent registers as node metadata (packer/consul/files/consul-bootstrap.sh). */
export interface NodeIdentity {
  instanceId: string;
  zone: string;
  project: string;
  /** The MIG's name (last segment of the instance's `created-by`). */
  group: string;
  role: string;
}

/**
 * `maintenance`: the node or one of its services is in maintenance (a drain in progress);
 * `unknown`: its checks were over the per-node cap (oversized, read.ts): nothing acts on it;
 * otherwise the worst check status; a node without checks counts as passing.
 */
export type NodeHealth = CheckStatus | 'maintenance' | 'unknown';

export interface SweepNode {
  name: string;
  address: string;
  modifyIndex: number;
  /** Absent when the metadata is missing or invalid: such a node is never acted on. */
  identity?: NodeIdentity;
  health: NodeHealth;
  /** The node's `serfHealth` check, which the leader registers for every gossip member. */
  serf: CheckStatus | 'absent' | 'unknown';
  /** Checks whose id no agent of ours registers: left out of `health` (identity.ts). */
  foreignChecks: number;
}

/** A LAN gossip member as a Consul server sees it (`/v1/agent/members`): what no catalog write forges. */
export interface GossipMember {
  address: string;
  /** Serf status: 1 alive, 2 leaving, 3 left, 4 failed. */
  status: number;
}

/** What the sweep remembers about one instance id between sweeps (KV, one key per id, CAS). */
export interface SweepMark {
  /** Consecutive complete sweeps in which the id was in no watched group. */
  absentCount: number;
  /** First sweep that saw the instance's node critical (ms). */
  criticalSince?: number;
  /** First sweep that saw the running instance without a Consul node (ms). */
  missingSince?: number;
}

/**
 * An entry of instanceEvents' drain list (`<prefix>draining/<node>`, shared/membership/drain.ts):
 * the HAProxy tier drains the node while its instance id is `instanceId`.
 */
export interface DrainEntry {
  instanceId: string;
  since: number;
}

export interface Stored<T> {
  /** null: the key exists but its value is invalid; it is overwritten (CAS) or deleted. */
  value: T | null;
  modifyIndex: number;
}

export interface Observation {
  /** Time of the sweep (ms). */
  at: number;
  /** One per watched group that was read; a group that could not be read has a failed read. */
  groups: GroupObservation[];
  nodes: SweepNode[];
  /** Sweep marks by instance id. */
  marks: ReadonlyMap<string, Stored<SweepMark>>;
  /** instanceEvents' per-instance records of ids no group lists and no node claims: their ModifyIndex. */
  records: ReadonlyMap<string, number>;
  /** instanceEvents' drain list by node name (one list call); value null when it does not parse. */
  drains: ReadonlyMap<string, Stored<DrainEntry>>;
  /** The deletion bucket; modifyIndex 0 when the key does not exist yet. */
  bucket: Stored<BucketState>;
  /** `instances.get` of absent nodes (planner's `lookupCandidates`), by the node's instance id. */
  lookups: ReadonlyMap<string, InstanceLookup>;
  /** LAN members by node name; null when not read (then no identity finding acts). */
  members: ReadonlyMap<string, GossipMember> | null;
  reads: ReadOutcome[];
  /**
   * Set when `/v1/catalog/nodes` was over the cap and the nodes were listed from the gossip members
   * (read-fallback.ts): catalog-only nodes are missing, so absence from `nodes` proves nothing.
   */
  listing?: { source: 'members'; detail: string };
}

const projectPattern = /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/;
const instancePath = /\/projects\/([^/]+)\/zones\/([^/]+)\/instances\/([^/?#]+)$/;

/** Compute ids are uint64: a decimal string within range (no precision lost on the way). */
export const isInstanceId = (v: string): boolean =>
  instanceIdPattern.test(v) && (v.length < 20 || v <= '18446744073709551615');

const rawManagedInstance = z.object({
  // JSON gives a string; a client that decoded it as a number is only trusted while it is exact.
  id: z
    .union([z.string(), z.number().int().nonnegative().refine(Number.isSafeInteger, 'an id beyond 2^53')])
    .nullish(),
  instance: z.string().max(2048),
  instanceStatus: z.string().max(64).nullish(),
  currentAction: z.string().max(64).nullish(),
});

/**
 * Managed instances of one group, from all its pages. An entry that does not parse, or names an
 * instance outside the group's project and scope, is dropped and counted: the caller reports the
 * group's read as partial, since a dropped member would look absent.
 */
export function normaliseManagedInstances(
  group: WatchedGroup,
  raw: readonly unknown[],
): { members: ManagedMember[]; dropped: number } {
  const members: ManagedMember[] = [];
  let dropped = 0;
  for (const entry of raw) {
    const parsed = rawManagedInstance.safeParse(entry);
    const m = parsed.success ? instancePath.exec(parsed.data.instance) : null;
    const [, project = '', zone = '', name = ''] = m ?? [];
    if (!parsed.success || !m) {
      dropped++;
      continue;
    }
    const id = parsed.data.id === null || parsed.data.id === undefined ? undefined : String(parsed.data.id);
    if (
      project !== group.project ||
      !zonePattern.test(zone) ||
      !scopeHolds(group.scope, zone) ||
      !computeNamePattern.test(name) ||
      (id !== undefined && !isInstanceId(id))
    ) {
      dropped++;
      continue;
    }
    members.push({
      ...(id !== undefined ? { id } : {}),
      name,
      project,
      zone,
      instance: parsed.data.instance,
      ...(parsed.data.instanceStatus ? { instanceStatus: parsed.data.instanceStatus } : {}),
      currentAction: parsed.data.currentAction || 'NONE',
    });
  }
  return { members, dropped };
}

const rawCatalogNode = z.object({
  Node: z.string().min(1).max(256),
  Address: z.string().max(256),
  Meta: z.record(z.string(), z.string()).nullish(),
  ModifyIndex: z.number().int().nonnegative(),
});

const rawHealthCheck = z.object({
  Node: z.string(),
  CheckID: z.string(),
  Status: z.string(),
  ServiceID: z.string().nullish(),
});

/** The node's identity if every field is present and well-formed. */
export function parseIdentity(
  meta: Readonly<Record<string, string>> | null | undefined,
): NodeIdentity | undefined {
  if (!meta) return undefined;
  const get = (k: string) => (Object.hasOwn(meta, k) ? meta[k] : undefined);
  const identity = {
    instanceId: get(nodeMetaKeys.instanceId),
    zone: get(nodeMetaKeys.zone),
    project: get(nodeMetaKeys.project),
    group: get(nodeMetaKeys.group),
    role: get(nodeMetaKeys.role),
  };
  const { instanceId, zone, project, group, role } = identity;
  if (
    instanceId === undefined ||
    zone === undefined ||
    project === undefined ||
    group === undefined ||
    role === undefined ||
    !isInstanceId(instanceId) ||
    !zonePattern.test(zone) ||
    !projectPattern.test(project) ||
    !computeNamePattern.test(group) ||
    !rolePattern.test(role)
  ) {
    return undefined;
  }
  return { instanceId, zone, project, group, role };
}

const isMaintenanceCheck = (checkId: string) =>
  checkId === '_node_maintenance' || checkId.startsWith('_service_maintenance:');

/**
 * The check ids our agents register: the leader's `serfHealth`, a service definition's check
 * (`service:<service id>`, packer/consul/files/consul-bootstrap.sh), and the agent's maintenance
 * marks. Anything else on a node was written through the catalog API by someone else (a node-write
 * token is enough): it never makes a node critical. A forged check under one of these ids is
 * indistinguishable in the catalog; the node's own agent overwrites it at its next anti-entropy
 * sync, and per-instance tokens (a VM writes only its own node) refuse it.
 */
export const isAgentCheck = (checkId: string): boolean =>
  checkId === 'serfHealth' || /^service:[^\s]{1,256}$/.test(checkId) || isMaintenanceCheck(checkId);

const severity: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

/**
 * Catalog nodes (`/v1/catalog/nodes`, all pages) joined with the checks read (read.ts). Entries
 * that do not parse are dropped and counted; a check of an unknown status counts as critical
 * (looking dead never deletes anything by itself). `oversized`: nodes whose checks were not read.
 */
export function normaliseNodes(
  rawNodes: readonly unknown[],
  rawChecks: readonly unknown[],
  oversized: ReadonlySet<string> = new Set(),
): { nodes: SweepNode[]; dropped: number } {
  let dropped = 0;
  const health = new Map<string, Exclude<NodeHealth, 'unknown'>>();
  const serf = new Map<string, CheckStatus>();
  const foreign = new Map<string, number>();
  for (const entry of rawChecks) {
    const parsed = rawHealthCheck.safeParse(entry);
    if (!parsed.success) {
      dropped++;
      continue;
    }
    const c = parsed.data;
    const status: CheckStatus = c.Status === 'passing' || c.Status === 'warning' ? c.Status : 'critical';
    if (!isAgentCheck(c.CheckID)) {
      foreign.set(c.Node, (foreign.get(c.Node) ?? 0) + 1);
      continue;
    }
    if (c.CheckID === 'serfHealth' && !c.ServiceID) serf.set(c.Node, status);
    const before = health.get(c.Node) ?? 'passing';
    if (before === 'maintenance') continue;
    if (isMaintenanceCheck(c.CheckID) && status === 'critical') health.set(c.Node, 'maintenance');
    else if (severity[status] > severity[before]) health.set(c.Node, status);
    else health.set(c.Node, before);
  }
  const nodes: SweepNode[] = [];
  for (const entry of rawNodes) {
    const parsed = rawCatalogNode.safeParse(entry);
    if (!parsed.success) {
      dropped++;
      continue;
    }
    const n = parsed.data;
    const identity = parseIdentity(n.Meta);
    const unread = oversized.has(n.Node);
    nodes.push({
      name: n.Node,
      address: n.Address,
      modifyIndex: n.ModifyIndex,
      ...(identity ? { identity } : {}),
      health: unread ? 'unknown' : (health.get(n.Node) ?? 'passing'),
      serf: unread ? 'unknown' : (serf.get(n.Node) ?? 'absent'),
      foreignChecks: foreign.get(n.Node) ?? 0,
    });
  }
  return { nodes, dropped };
}

const markSchema = z.strictObject({
  absentCount: z.number().int().min(0).max(1_000_000),
  criticalSince: z.number().int().nonnegative().optional(),
  missingSince: z.number().int().nonnegative().optional(),
});

/** A sweep mark from its KV value (JSON text); null when invalid. */
export function parseMark(text: string): SweepMark | null {
  try {
    const parsed = markSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const bucketSchema = z.strictObject({ tokens: z.number(), at: z.number() });

/** The bucket state from its KV value; null when invalid (the planner then starts it empty). */
export function parseBucket(text: string): BucketState | null {
  try {
    const parsed = bucketSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const drainSchema = z.object({
  instanceId: z.string().refine(isInstanceId),
  since: z.number().int().nonnegative(),
});

/** A drain list entry from its KV value; null when invalid (such an entry drains nothing). */
export function parseDrain(text: string): DrainEntry | null {
  try {
    const parsed = drainSchema.safeParse(JSON.parse(text));
    return parsed.success ? { instanceId: parsed.data.instanceId, since: parsed.data.since } : null;
  } catch {
    return null;
  }
}

/** The node name at the end of a drain list key under `prefix`, if it is a Compute name. */
export function nodeFromDrainKey(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return computeNamePattern.test(rest) ? rest : undefined;
}

/** The instance id at the end of a KV key under `prefix`, if it is one. */
export function idFromKey(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return isInstanceId(rest) ? rest : undefined;
}
