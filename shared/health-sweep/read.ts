import type { InstancesApi, InstanceLookup } from '../gcp/instances';
import type { ConsulClient } from '../consul';
import type { GroupsApi } from '../gcp/groups';
import type { ApiCalls } from './calls';
import type { HealthSweepConfig } from './config';
import {
  idFromKey,
  normaliseManagedInstances,
  normaliseNodes,
  parseBucket,
  parseMark,
  nodeFromDrainKey,
  parseDrain,
  type DrainEntry,
  type GroupObservation,
  type Observation,
  type ReadOutcome,
  type SweepMark,
  type Stored,
} from './observe';
import { lookupCandidates } from './classify';
import { describe, listFromMembers, pool, readChecks, type NodeListing } from './read-fallback';
import type { HealthSweepKeys } from './state';
import type { BucketState } from './token-bucket';

/**
 * The observe adapter: reads the world once per sweep. Compute: per group, the pages of
 * `listManagedInstances` and one `get`. Consul: the catalog's nodes and the checks the sweep uses
 * (one call each), the keys of the marks and records and the drain list with its values (one call
 * each), and a get per mark, per leftover candidate and for the bucket. So calls grow with pages
 * and anomalies, never with nodes, except under attack (read-fallback.ts): a VM's own token may
 * put checks, metadata and tagged addresses of any size on its own node (Consul 1.15.6 bounds none
 * of them on `/v1/catalog/register`), so either whole answer may be over the Consul layer's cap.
 * Then it is read node by node, one call per node (at most `reads.maxNodeReads`), each under a
 * per-node cap: the checks with `/v1/health/node/<node>` (`reads.nodeChecksMaxBytes`), the nodes
 * listed from the gossip members with `/v1/catalog/node/<name>` (`reads.nodeMaxBytes`). A node over
 * its cap is oversized and left alone; a listing from the members misses catalog-only nodes, which
 * the observation says (`listing`) so the planner acts on no absence it cannot prove.
 * Nothing throws: a read that fails is recorded as failed, which makes the sweep report-only.
 */

/**
 * The checks the sweep uses, filtered by the servers (bexpr, `?filter=` on `/v1/health/state/:state`
 * and `/v1/health/node/:node`: https://developer.hashicorp.com/consul/api-docs/health, "Filtering"):
 * the ids our agents register (observe.ts `isAgentCheck`) and any check that is not passing (what
 * identity.ts reports as foreign). Passing checks of other ids never change a decision.
 */
export const sweepChecksFilter =
  'CheckID == "serfHealth" or CheckID == "_node_maintenance" or ' +
  'CheckID matches "^(service|_service_maintenance):" or Status != "passing"';

export type SweepConsul = {
  agent: Pick<ConsulClient['agent'], 'members'>;
  catalog: Pick<ConsulClient['catalog'], 'nodes' | 'node'>;
  health: Pick<ConsulClient['health'], 'state' | 'node'>;
  kv: Pick<ConsulClient['kv'], 'get' | 'keys' | 'list'>;
};

export interface ReadDeps {
  consul: SweepConsul;
  groups: GroupsApi;
  instances: InstancesApi;
  keys: HealthSweepKeys;
  calls: ApiCalls;
  /** Most `instances.get` lookups per sweep (the absent nodes closest to N first). */
  lookupLimit: number;
  /** Parallel requests per source. */
  concurrency?: number;
}

export async function observeWorld(
  deps: ReadDeps,
  config: HealthSweepConfig,
  at: number,
): Promise<Observation> {
  const { consul, calls, keys } = deps;
  const concurrency = deps.concurrency ?? 8;
  const reads: ReadOutcome[] = [];
  const consulCall = <T>(p: () => Promise<T>) => {
    calls.consul++;
    return p();
  };

  const groupsRead = readGroups(deps, config, concurrency, reads);

  const consulRead = async <T>(what: string, p: () => Promise<T>, source: 'consul' | 'kv' = 'consul') => {
    try {
      return await consulCall(p);
    } catch (err) {
      reads.push({ source, what, status: 'failed', detail: describe(err) });
      return undefined;
    }
  };

  const [groups, wholeNodes, rawChecks, markKeys, recordKeys, drainEntries, bucketEntry, rawMembers] =
    await Promise.all([
      groupsRead,
      // An answer or the error: over the cap, the nodes are listed from the gossip members.
      consulCall(() => consul.catalog.nodes()).then(
        (list): NodeListing => ({ nodes: list, oversized: new Set() }),
        (err: unknown) => ({ err }),
      ),
      // An answer or the error: over the cap, the checks are read node by node once the nodes are known.
      consulCall(() => consul.health.state('any', { filter: sweepChecksFilter })).then(
        (checks) => ({ checks }),
        (err: unknown) => ({ err }),
      ),
      consulRead(keys.marks, () => consul.kv.keys(keys.marks), 'kv'),
      consulRead(keys.records, () => consul.kv.keys(keys.records), 'kv'),
      // The drain list is short (nodes being drained now): values and indexes in one call.
      consulRead(keys.draining, () => consul.kv.list(keys.draining), 'kv'),
      consulRead(keys.bucket, () => consul.kv.get(keys.bucket), 'kv'),
      // The LAN pool as the server sees it: one call, what identity.ts checks the catalog against.
      consulRead('agent/members', () => consul.agent.members()),
    ]);
  const members = rawMembers
    ? new Map(rawMembers.map((m) => [m.name, { address: m.address, status: m.status }]))
    : null;

  const listing =
    'err' in wholeNodes ? await listFromMembers(deps, config, wholeNodes.err, rawMembers, reads) : wholeNodes;
  // The layer answers in its own shape; the normaliser validates Consul's.
  const catalog = (listing?.nodes ?? []).map((n) => ({
    Node: n.name,
    Address: n.address,
    Meta: n.meta,
    ModifyIndex: n.modifyIndex,
  }));
  const read = await readChecks(deps, config, sweepChecksFilter, rawChecks, listing?.nodes, reads);
  const oversized = new Set([...read.oversized, ...(listing?.oversized ?? [])]);
  const { nodes, dropped } = normaliseNodes(catalog, read.checks, oversized);
  if (dropped > 0) {
    reads.push({
      source: 'consul',
      what: 'catalog/nodes',
      status: 'partial',
      detail: `${dropped} entries did not parse`,
    });
  }

  // Marks exist only for anomalies: one get each.
  const marks = new Map<string, Stored<SweepMark>>();
  const markIds = (markKeys ?? []).flatMap((k) => idFromKey(keys.marks, k) ?? []);
  await pool(markIds, concurrency, async (id) => {
    const entry = await consulRead(`${keys.marks}${id}`, () => consul.kv.get(`${keys.marks}${id}`), 'kv');
    if (entry) marks.set(id, { value: parseMark(entry.value), modifyIndex: entry.modifyIndex });
  });

  // instanceEvents' records: only those of ids no group lists and no node claims can be reaped,
  // so only those are read.
  const observed = groups.filter((g): g is GroupObservation => g !== null);
  const known = new Set<string>();
  for (const g of observed) for (const m of g.members) if (m.id) known.add(m.id);
  for (const n of nodes) if (n.identity) known.add(n.identity.instanceId);
  const records = new Map<string, number>();
  const recordIds = (recordKeys ?? [])
    .flatMap((k) => idFromKey(keys.records, k) ?? [])
    .filter((id) => !known.has(id));
  await pool(recordIds, concurrency, async (id) => {
    const entry = await consulRead(`${keys.records}${id}`, () => consul.kv.get(`${keys.records}${id}`), 'kv');
    if (entry) records.set(id, entry.modifyIndex);
  });

  const drains = new Map<string, Stored<DrainEntry>>();
  for (const entry of drainEntries ?? []) {
    const node = nodeFromDrainKey(keys.draining, entry.key);
    if (node) drains.set(node, { value: parseDrain(entry.value), modifyIndex: entry.modifyIndex });
  }

  const bucket: Stored<BucketState> = bucketEntry
    ? { value: parseBucket(bucketEntry.value), modifyIndex: bucketEntry.modifyIndex }
    : { value: null, modifyIndex: 0 };

  const withoutLookups: Observation = {
    at,
    groups: observed,
    nodes,
    marks,
    records,
    drains,
    bucket,
    lookups: new Map(),
    members,
    reads,
    ...(listing?.degraded ? { listing: { source: 'members' as const, detail: listing.degraded } } : {}),
  };

  const lookups = await lookUpAbsent(deps, config, withoutLookups, concurrency, reads);
  return { ...withoutLookups, lookups };
}

/** Per group, its managed instances and its stability; a group whose read fails is recorded and null. */
function readGroups(
  deps: ReadDeps,
  config: HealthSweepConfig,
  concurrency: number,
  reads: ReadOutcome[],
): Promise<(GroupObservation | null)[]> {
  return pool(config.groups, concurrency, async (group): Promise<GroupObservation | null> => {
    // Both settle before the group counts as read: no call of this sweep outlives it.
    const [listed, stable] = await Promise.allSettled([
      deps.groups.listManagedInstances(group),
      deps.groups.isStable(group),
    ]);
    try {
      if (listed.status === 'rejected') throw listed.reason;
      if (stable.status === 'rejected') throw stable.reason;
      const [raw, isStable] = [listed.value, stable.value];
      const { members, dropped } = normaliseManagedInstances(group, raw);
      if (dropped > 0) {
        reads.push({
          source: 'compute',
          what: group.key,
          status: 'partial',
          detail: `${dropped} managed instances did not parse`,
        });
      }
      return { key: group.key, isStable, members };
    } catch (err) {
      reads.push({ source: 'compute', what: group.key, status: 'failed', detail: describe(err) });
      return null;
    }
  });
}

/** Compute's word on absent nodes: a 404 (or another id under the name) makes them stale at once. */
async function lookUpAbsent(
  deps: ReadDeps,
  config: HealthSweepConfig,
  observed: Observation,
  concurrency: number,
  reads: ReadOutcome[],
): Promise<Map<string, InstanceLookup>> {
  const lookups = new Map<string, InstanceLookup>();
  const candidates = lookupCandidates(config, observed, deps.lookupLimit);
  await pool(candidates, concurrency, async (c) => {
    deps.calls.compute++;
    try {
      lookups.set(c.instanceId, await deps.instances.get({ project: c.project, zone: c.zone, name: c.name }));
    } catch (err) {
      reads.push({
        source: 'compute',
        what: `instances/${c.zone}/${c.name}`,
        status: 'failed',
        detail: describe(err),
      });
    }
  });
  return lookups;
}
