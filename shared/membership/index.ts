import type { ConsulClient } from '../consul/client';
import type { Logger } from '../logging';
import { createDrainList, type DrainList } from './drain';
import { createRecordStore, type RecordStore } from './records';

export { computeNamePattern, instanceIdPattern } from './names';
export type { DrainList } from './drain';
export {
  mergeRecord,
  noRecord,
  type InstanceRecord,
  type Maintenance,
  type RecordMark,
  type RecordStore,
  type StoredRecord,
} from './records';

/**
 * Membership: draining and deregistering one node safely. instanceEvents (on an audit-log event)
 * and healthSweep (on a stale node it found) both act through it and never through each other.
 */

export type MembershipConsul = {
  catalog: Pick<ConsulClient['catalog'], 'node' | 'deleteNodeCas'>;
  kv: Pick<ConsulClient['kv'], 'get' | 'set' | 'cas' | 'delete'>;
};

export interface MembershipDeps {
  consul: MembershipConsul;
  /** KV prefix of the per-instance records, ending in `/`. */
  recordPrefix: string;
  /** KV prefix of the drain list the HAProxy tier reads, ending in `/`. */
  drainPrefix: string;
  /**
   * Force-leave through a separately held operator token; null: never force-leave (healthSweep, and
   * instanceEvents deployed without that token).
   */
  forceLeave: ((node: string) => Promise<unknown>) | null;
  logger: Logger;
}

/** What became of a deregistration: `skipped` when a newer registration of the node won. */
export type DeregisterResult = { result: 'done' } | { result: 'skipped'; reason: 'modified-concurrently' };

export interface Membership {
  drains: DrainList;
  records: RecordStore;
  /**
   * Deletes the node if its ModifyIndex is still the one read, then force-leaves it when `leave`.
   * A lost CAS on a node that still exists is a skip: it re-registered, the newer registration wins.
   */
  deregisterNode(step: { node: string; modifyIndex: number; leave: boolean }): Promise<DeregisterResult>;
  /** Removes a failed member from gossip (with prune), or logs that it is left to Consul's reaping. */
  forceLeave(node: string): Promise<void>;
}

/**
 * Force-leave through the operator token held apart (CONSUL_FORCE_LEAVE_TOKEN), on the function's
 * own Consul address; null without that token.
 */
export function forceLeaveWith(
  consul: Pick<ConsulClient, 'at'>,
  token: string | undefined,
): MembershipDeps['forceLeave'] {
  const operator = token ? consul.at({ token }) : null;
  return operator ? (node) => operator.agent.forceLeave(node) : null;
}

export function createMembership(deps: MembershipDeps): Membership {
  const { consul, logger } = deps;
  const forceLeave = async (node: string) => {
    if (deps.forceLeave) await deps.forceLeave(node);
    // The servers reap a failed member after its agent's advertise_reconnect_timeout (set on every
    // client agent); until then it is a critical node, which HAProxy does not render.
    else logger.info({ instance: node }, "not force-left: a failed member is left to Consul's reaping");
  };
  return {
    drains: createDrainList(consul.kv, deps.drainPrefix),
    records: createRecordStore(consul.kv, deps.recordPrefix),
    forceLeave,
    async deregisterNode({ node, modifyIndex, leave }) {
      if ((await consul.catalog.deleteNodeCas(node, modifyIndex)) === 'conflict') {
        // Re-registered between the read and the delete: the newer registration wins. Already
        // deleted (an earlier attempt, the other function): the failed member still has to leave.
        if ((await consul.catalog.node(node)) !== null)
          return { result: 'skipped', reason: 'modified-concurrently' };
      }
      if (leave) await forceLeave(node);
      return { result: 'done' };
    },
  };
}
