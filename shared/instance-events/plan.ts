import type { InstanceLookup } from '../gcp/instances';
import type { CatalogNode } from '../consul/schemas';
import { managedRoles, nodeMetaKeys } from '../contract';
import { computeNamePattern, instanceIdPattern, type InstanceRecord, type RecordMark } from '../membership';
import type { EventTarget, InstanceEvent } from './parse';

/**
 * What the leader's `serfHealth` check says of the node's agent: passing (alive), not passing
 * (failed or left), or no such check (the leader has not registered the member: its node came
 * from its agent's own sync, or its gossip membership was cut short), which proves nothing.
 */
export type Gossip = 'alive' | 'absent' | 'unknown';

export interface Observation {
  node: CatalogNode | null;
  /** `instances.get` for the target's name, made only when `needsLookup` says so. */
  lookup?: InstanceLookup;
  /** `instances.get` for the resolved instance id, made only when `needsConfirmation` says so. */
  current?: InstanceLookup;
  /** Read only for removals logged by the system. */
  gossip?: Gossip;
  /** The record of the resolved instance id, if any. */
  record: InstanceRecord | null;
}

export type Step =
  /** Writes the node's key in the drain list, naming the instance id. */
  | { type: 'drain'; node: string; instanceId: string; since: number }
  /** Deletes the node's drain key if it still names this instance id. */
  | { type: 'undrain'; node: string; instanceId: string }
  /** The instance is deleted for good (ids are never reused): its record goes too. */
  | { type: 'forget-instance'; instanceId: string }
  | { type: 'deregister'; node: string; modifyIndex: number; instanceId: string }
  | { type: 'force-leave'; node: string };

export type Decision = 'drain' | 'deregister' | 'restore' | 'skip' | 'retry';

export interface TargetPlan {
  target: EventTarget;
  instanceId?: string;
  decision: Decision;
  reason: string;
  steps: Step[];
  /** Event time recorded on the instance's record once the steps succeed. */
  mark?: RecordMark;
}

/** Compute states in which an instance still serves; anything else is out of service or going. */
const servingStatuses = new Set(['PROVISIONING', 'STAGING', 'RUNNING', 'REPAIRING']);

/** Nodes of the MIG-managed roles: the only ones this function may act on (never Consul servers). */
export function isManagedNode(name: string, meta: Record<string, string> = {}): boolean {
  const role = meta[nodeMetaKeys.role];
  if (role !== undefined && !(managedRoles as readonly string[]).includes(role)) return false;
  return computeNamePattern.test(name) && managedRoles.some((r) => name.startsWith(`${r}-`));
}

/** The node's instance id from its metadata, if it is a valid one (Consul's values are untrusted). */
export const metaInstanceId = (node: CatalogNode | null): string | undefined => {
  const id = node?.meta[nodeMetaKeys.instanceId];
  return id !== undefined && instanceIdPattern.test(id) ? id : undefined;
};

/** A node without identity metadata is checked against Compute before anything acts on it. */
export function needsLookup(event: InstanceEvent, node: CatalogNode | null): boolean {
  return event.action !== 'restore' && node !== null && !node.meta[nodeMetaKeys.instanceId];
}

/**
 * Compute confirms a restore that follows a failed or abandoning operation (the instance must still
 * run), and a system removal of a node still alive in gossip (the VM may have restarted in place).
 */
export function needsConfirmation(
  event: InstanceEvent,
  obs: Pick<Observation, 'node' | 'gossip' | 'record'>,
): boolean {
  if (event.confirm === 'serving') return obs.record?.maintenance !== undefined;
  if (event.confirm === 'gone') return obs.node !== null && obs.gossip !== 'absent';
  return false;
}

/** The instance id a target refers to: from the event, else the node's metadata, else Compute. */
export function resolveInstanceId(target: EventTarget, obs: Omit<Observation, 'record'>): string | undefined {
  if (target.instanceId) return target.instanceId;
  if (target.byId) return target.name;
  const fromMeta = metaInstanceId(obs.node);
  if (fromMeta) return fromMeta;
  return obs.lookup?.found && instanceIdPattern.test(obs.lookup.id) ? obs.lookup.id : undefined;
}

const markField = { drain: 'drainAt', restore: 'restoreAt' } as const;

const later = (at: number | undefined, than: number) => at !== undefined && at > than;
const serving = (lookup: InstanceLookup | undefined) =>
  lookup?.found === true && servingStatuses.has(lookup.status);

/**
 * Decides what one event means for one named instance, given what Consul (and, where needed,
 * Compute) say now. Pure: the same inputs give the same plan. No action is keyed on the name
 * alone: the node must carry the event's instance id, or Compute must confirm it.
 */
export function planTarget(event: InstanceEvent, target: EventTarget, obs: Observation): TargetPlan {
  const instanceId = resolveInstanceId(target, obs);
  const record = obs.record ?? {};
  const node = obs.node;
  const nodeId = node?.meta[nodeMetaKeys.instanceId];
  // Recorded, so a later-delivered older event knows it is superseded. Not for removals (a deleted
  // node is its own tombstone) nor creations (nothing about an instance happens before it exists).
  const mark =
    instanceId && event.action !== 'remove' && event.method !== 'compute.instances.insert'
      ? { field: markField[event.action], at: event.time }
      : undefined;
  const skip = (reason: string, steps: Step[] = []): TargetPlan => ({
    target,
    instanceId,
    decision: 'skip',
    reason,
    steps,
    mark,
  });
  // Not about this instance at all (another one owns the name, or another group): nothing recorded.
  const ignore = (reason: string): TargetPlan => ({ ...skip(reason), mark: undefined });
  const act = (decision: Decision, reason: string, steps: Step[]): TargetPlan => ({
    ...skip(reason, steps),
    decision,
  });
  if (node ? !isManagedNode(node.name, node.meta) : !target.byId && !isManagedNode(target.name))
    return ignore('not-managed');
  // The name belongs to another instance now: by the node's metadata, or by Compute for a node without.
  const replaced =
    (nodeId ? nodeId !== instanceId : false) ||
    Boolean(obs.lookup?.found && instanceId !== undefined && obs.lookup.id !== instanceId);
  const undrain: Step[] =
    instanceId && record.maintenance ? [{ type: 'undrain', node: record.maintenance.node, instanceId }] : [];

  switch (event.action) {
    case 'drain': {
      if (!node) return skip('already-gone');
      const group = node.meta[nodeMetaKeys.group];
      if (event.group !== undefined && group !== undefined && group !== event.group)
        return ignore('not-in-group');
      if (instanceId === undefined)
        return ignore(obs.lookup && !obs.lookup.found ? 'already-gone' : 'unidentified');
      if (replaced) return ignore('replacement-present');
      if (later(record.restoreAt, event.time)) return skip('superseded');
      if (record.maintenance) return skip('already-draining');
      return act('drain', 'going-away', [{ type: 'drain', node: node.name, instanceId, since: event.time }]);
    }
    case 'remove': {
      if (instanceId === undefined) return ignore('unidentified');
      // A restore or a drain logged later shows the instance was still there after this event.
      if (later(record.restoreAt, event.time) || later(record.drainAt, event.time)) return skip('superseded');
      const forget: Step[] =
        event.method === 'compute.instances.delete' && obs.record
          ? [{ type: 'forget-instance', instanceId }]
          : [];
      // No force-leave by name for a node already gone: a MIG recreates the name at once, and a
      // leave intent gossiped as the replacement joins takes the replacement out of the member list.
      // A failed member the leader registers again shows up with a critical serfHealth instead.
      if (!node) return skip('already-gone', [...undrain, ...forget]);
      // The replacement keeps its node; the departed instance's drain key and record go.
      if (replaced) return { ...ignore('replacement-present'), steps: [...undrain, ...forget] };
      if (serving(obs.lookup)) return skip('instance-running');
      if (needsConfirmation(event, obs)) {
        if (!obs.current) return act('retry', 'unconfirmed', []);
        // A host error followed by a restart in place: the same id runs again, its node stays.
        if (serving(obs.current) && obs.current.found && obs.current.id === instanceId)
          return skip('instance-running');
      }
      // A member still alive in gossip (a preempted VM in its shutdown window) is not force-left:
      // pruning a live member takes serf's broadcast timeout (seconds) and erases it from the member
      // list, so its own `consul leave` moments later no longer deregisters the node its agent keeps
      // registering until then. Once it left or failed, a later entry (the group's repair, the
      // delete's `last`) or the sweep finds it out of gossip and force-leaves it.
      const leave: Step[] =
        obs.gossip === 'alive' || obs.gossip === 'unknown' ? [] : [{ type: 'force-leave', node: node.name }];
      return act('deregister', 'instance-gone', [
        { type: 'deregister', node: node.name, modifyIndex: node.modifyIndex, instanceId },
        ...undrain,
        ...forget,
        ...leave,
      ]);
    }
    case 'restore': {
      if (instanceId === undefined) return ignore('unidentified');
      const m = record.maintenance;
      if (!m) return skip('no-maintenance');
      // A drain that found the node already draining still counts: its time is the record's drainAt.
      if (Math.max(m.eventAt, record.drainAt ?? -Infinity) > event.time) return skip('superseded');
      if (event.confirm === 'serving') {
        if (!obs.current) return act('retry', 'unconfirmed', []);
        // Gone, or on its way out (a group may still be deleting it): the drain stays, nothing recorded.
        if (!obs.current.found || obs.current.id !== instanceId) return ignore('instance-gone');
        if (!serving(obs.current)) return ignore('instance-going-away');
      }
      return act('restore', node && !replaced ? 'back-in-service' : 'node-gone', undrain);
    }
  }
}
