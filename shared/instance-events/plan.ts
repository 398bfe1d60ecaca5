import type { InstanceLookup } from '../compute/instances';
import type { CatalogNode } from '../consul/schemas';
import { nodeMetaKeys } from '../contract';
import type { EventTarget, InstanceEvent } from './parse';

/** Maintenance this function put on a node for one instance id, so it lifts only its own. */
export interface Maintenance {
  /** `agent`: the node's own agent (`/v1/agent/maintenance`); `catalog`: a critical catalog check. */
  mode: 'agent' | 'catalog';
  node: string;
  reason: string;
  /** Time of the event that set it. */
  eventAt: number;
}

/**
 * What this function has applied for one instance id: the latest drain and restore times and
 * its maintenance. Removals need no record: a deleted node is its own tombstone, and an agent that
 * comes back is followed by a restore (property-tested in instance-events.plan.test.ts).
 */
export interface InstanceRecord {
  drainAt?: number;
  restoreAt?: number;
  maintenance?: Maintenance;
}

export interface Observation {
  node: CatalogNode | null;
  /** `instances.get` for the target's name, made only when `needsLookup` says so. */
  lookup?: InstanceLookup;
  /** The record of the resolved instance id, if any. */
  record: InstanceRecord | null;
}

export type Step =
  | { type: 'set-maintenance'; node: string; address: string; instanceId: string; reason: string }
  | { type: 'clear-maintenance'; node: string; address: string; instanceId: string; maintenance: Maintenance }
  | { type: 'forget-maintenance'; instanceId: string }
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
  mark?: { field: 'drainAt' | 'restoreAt'; at: number };
}

/** Compute states in which an instance still serves; anything else is out of service. */
const servingStatuses = new Set(['PROVISIONING', 'STAGING', 'RUNNING', 'REPAIRING']);

export const maintenanceReason = (instanceId: string, method: string) =>
  `gce-ilb-orchestrator: instance ${instanceId} is going away (${method})`;

/** A node without identity metadata is checked against Compute before anything acts on it. */
export function needsLookup(event: InstanceEvent, node: CatalogNode | null): boolean {
  return event.action !== 'restore' && node !== null && !node.meta[nodeMetaKeys.instanceId];
}

/** The instance id a target refers to: from the event, else the node's metadata, else Compute. */
export function resolveInstanceId(target: EventTarget, obs: Omit<Observation, 'record'>): string | undefined {
  if (target.instanceId) return target.instanceId;
  const fromMeta = obs.node?.meta[nodeMetaKeys.instanceId];
  if (fromMeta) return fromMeta;
  return obs.lookup?.found ? obs.lookup.id : undefined;
}

const later = (at: number | undefined, than: number) => at !== undefined && at > than;

/**
 * Decides what one event means for one named instance, given what Consul (and, for nodes without
 * identity, Compute) say now. Pure: the same inputs give the same plan. No action is keyed on the
 * name alone: the node must carry the event's instance id, or Compute must confirm it.
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
  // The name belongs to another instance now: by the node's metadata, or by Compute for a node without.
  const replaced =
    (nodeId ? nodeId !== instanceId : false) ||
    Boolean(obs.lookup?.found && instanceId !== undefined && obs.lookup.id !== instanceId);

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
      return act('drain', 'going-away', [
        {
          type: 'set-maintenance',
          node: node.name,
          address: node.address,
          instanceId,
          reason: maintenanceReason(instanceId, event.method),
        },
      ]);
    }
    case 'remove': {
      if (instanceId === undefined) return ignore('unidentified');
      if (later(record.restoreAt, event.time)) return skip('superseded');
      const forget: Step[] =
        event.method === 'compute.instances.delete' && obs.record
          ? [{ type: 'forget-instance', instanceId }]
          : [];
      // A catalog entry removed by an earlier attempt may still be a failed gossip member, which the
      // leader would register again: force-leave is idempotent, so it is repeated.
      if (!node) return skip('already-gone', [{ type: 'force-leave', node: target.name }, ...forget]);
      if (replaced) return ignore('replacement-present');
      if (obs.lookup?.found && servingStatuses.has(obs.lookup.status)) return skip('instance-running');
      return act('deregister', 'instance-gone', [
        { type: 'deregister', node: node.name, modifyIndex: node.modifyIndex, instanceId },
        { type: 'force-leave', node: node.name },
        ...forget,
      ]);
    }
    case 'restore': {
      if (instanceId === undefined) return ignore('unidentified');
      const m = record.maintenance;
      if (!m) return skip('no-maintenance');
      // A drain that found the node already draining still counts: its time is the record's drainAt.
      if (Math.max(m.eventAt, record.drainAt ?? -Infinity) > event.time) return skip('superseded');
      if (!node || node.name !== m.node) {
        // The node's own agent keeps its maintenance across a restart: wait until it is back.
        if (m.mode === 'agent' && !node) return act('retry', 'agent-not-registered', []);
        return act('restore', 'node-gone', [{ type: 'forget-maintenance', instanceId }]);
      }
      if (replaced) {
        return act('restore', 'replacement-present', [{ type: 'forget-maintenance', instanceId }]);
      }
      return act('restore', 'back-in-service', [
        { type: 'clear-maintenance', node: node.name, address: node.address, instanceId, maintenance: m },
      ]);
    }
  }
}

const markField = { drain: 'drainAt', restore: 'restoreAt' } as const;

/** Merges an update into a record: times only move forward, so merges commute. */
export function mergeRecord(
  record: InstanceRecord | null,
  mark: TargetPlan['mark'],
  maintenance: Maintenance | null | undefined,
): InstanceRecord {
  const next: InstanceRecord = { ...(record ?? {}) };
  if (mark) next[mark.field] = Math.max(next[mark.field] ?? -Infinity, mark.at);
  if (maintenance === null) delete next.maintenance;
  else if (maintenance) next.maintenance = maintenance;
  return next;
}
