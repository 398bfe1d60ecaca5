import type { InstanceLookup } from '../gcp/instances';
import { operationNamePattern, type OperationLookup } from '../gcp/operations';
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
  /**
   * `instances.get` for the target (by name), made when `needsConfirmation` says so: the claim that
   * the instance goes, went or serves again is Compute's to confirm, never the entry's alone.
   */
  current?: InstanceLookup;
  /** `zoneOperations.get` of the entry's operation: a drain's early confirmation. */
  operation?: OperationLookup;
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

export type Decision = 'drain' | 'deregister' | 'restore' | 'skip' | 'refuse' | 'retry';

export interface TargetPlan {
  target: EventTarget;
  instanceId?: string;
  decision: Decision;
  reason: string;
  steps: Step[];
  /** Event time recorded on the instance's record once the steps succeed. */
  mark?: RecordMark;
  /** For a refusal: the action the entry asked for. */
  refused?: 'drain' | 'deregister' | 'restore';
}

/** Compute states in which an instance still serves. */
const servingStatuses = new Set(['PROVISIONING', 'STAGING', 'RUNNING', 'REPAIRING']);
/**
 * Compute states of an instance on its way out or out of service (Instance.status in
 * https://cloud.google.com/compute/docs/reference/rest/v1/instances): a deletion, stop or suspension
 * runs or ran. Any other state (serving, or one this list does not know) confirms nothing.
 */
export const leavingStatuses = new Set([
  'STOPPING',
  'PENDING_STOP',
  'TERMINATED',
  'SUSPENDING',
  'SUSPENDED',
  'DEPROVISIONING',
]);
/** A drain older than this on an instance Compute reports serving is lifted by the next event. */
export const staleDrainMs = 30 * 60_000;

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
 * Whether the entry's operation, read from Compute, is the one the entry claims: same type as the
 * method (`compute.instances.delete` → `delete`), on this very instance id, not failed. Pending,
 * running or done: a real deletion is confirmed the moment it is accepted, so the drain stays early.
 */
export function operationConfirms(event: InstanceEvent, instanceId: string, op: OperationLookup | undefined) {
  const verb = /^compute\.instances\.(\w+)$/.exec(event.method)?.[1];
  return op?.found === true && op.operationType === verb && op.targetId === instanceId && !op.failed;
}

/** Whether Compute's answer shows the instance gone, replaced under its name, or leaving. */
export function computeConfirmsGone(current: InstanceLookup | undefined, instanceId: string): boolean {
  if (!current) return false;
  return !current.found || current.id !== instanceId || leavingStatuses.has(current.status);
}

/**
 * Compute is asked (`instances.get`) before any action on a node: a drain not already confirmed by
 * its operation, a removal, a restore that would lift a drain.
 */
export function needsConfirmation(
  event: InstanceEvent,
  obs: Pick<Observation, 'node' | 'record' | 'operation'>,
  instanceId: string,
): boolean {
  if (event.action === 'restore') return obs.record?.maintenance !== undefined;
  if (obs.node === null) return false;
  return !(event.action === 'drain' && operationConfirms(event, instanceId, obs.operation));
}

const askedFor = { drain: 'drain', remove: 'deregister', restore: 'restore' } as const;

/**
 * An entry whose `operation.id` is no Compute operation name is not Google's: refused before
 * anything is read, so its value never reaches a Compute request (`zoneOperations.get` takes it as
 * a path segment). Undefined: the entry may be planned.
 */
export function refuseForgedOperation(event: InstanceEvent, target: EventTarget): TargetPlan | undefined {
  if (event.operationId === undefined || operationNamePattern.test(event.operationId)) return undefined;
  return {
    target,
    instanceId: target.instanceId,
    decision: 'refuse',
    reason: 'operation-name-invalid',
    steps: [],
    refused: askedFor[event.action],
  };
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
  // Not about this instance at all (another one owns the name), or not confirmed: nothing recorded.
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
  /**
   * Compute does not back the entry's claim: nothing changes, nothing is recorded. A drain left long
   * ago on an instance that still serves (its operation failed, the entry saying so was lost) is lifted.
   */
  const refuse = (refused: 'drain' | 'deregister', current: InstanceLookup): TargetPlan => {
    const m = record.maintenance;
    const stale = m !== undefined && serving(current) && event.time - m.eventAt > staleDrainMs;
    const reason = serving(current)
      ? 'instance-running'
      : `instance-${current.found ? current.status : 'unknown'}`;
    return { ...ignore(reason), decision: 'refuse', refused, steps: stale ? undrain : [] };
  };

  switch (event.action) {
    case 'drain': {
      if (!node) return ignore('already-gone');
      if (instanceId === undefined)
        return ignore(obs.lookup && !obs.lookup.found ? 'already-gone' : 'unidentified');
      if (replaced) return ignore('replacement-present');
      if (!operationConfirms(event, instanceId, obs.operation)) {
        if (!obs.current) return act('retry', 'unconfirmed', []);
        if (!computeConfirmsGone(obs.current, instanceId)) return refuse('drain', obs.current);
      }
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
      if (!obs.current) return act('retry', 'unconfirmed', []);
      // Still running with this id: a forged entry, or a host error followed by a restart in place.
      if (!computeConfirmsGone(obs.current, instanceId)) return refuse('deregister', obs.current);
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
      // Nothing to lift: nothing recorded either (an unconfirmed restore time would supersede drains).
      if (!m) return ignore('no-maintenance');
      // A drain that found the node already draining still counts: its time is the record's drainAt.
      if (Math.max(m.eventAt, record.drainAt ?? -Infinity) > event.time) return skip('superseded');
      if (!obs.current) return act('retry', 'unconfirmed', []);
      // Gone, or on its way out (a deletion may still run): the drain stays, nothing recorded.
      if (!obs.current.found || obs.current.id !== instanceId) return ignore('instance-gone');
      if (!serving(obs.current)) return ignore('instance-going-away');
      return act('restore', node && !replaced ? 'back-in-service' : 'node-gone', undrain);
    }
  }
}
