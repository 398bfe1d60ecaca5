import { recreateRequestId } from '../gcp/groups';
import { createMembership } from '../membership';
import type { ApiCalls } from './calls';
import type { SweepAction } from './plan';
import type { ActionOutcome, HealthSweepDeps } from './sweep';

/**
 * Carries out one planned action. Deregistrations take the same safe path as instanceEvents (the
 * membership's delete-cas on the ModifyIndex read, then force-leave); leftovers are deleted only if
 * still the entry read.
 */
export function createActionExecutor(
  deps: Pick<HealthSweepDeps, 'config' | 'consul' | 'groups' | 'forceLeave' | 'ledger' | 'keys' | 'logger'>,
  calls: ApiCalls,
) {
  const { config, consul, logger, keys } = deps;
  const membership = createMembership({
    consul,
    recordPrefix: keys.records,
    drainPrefix: keys.draining,
    forceLeave: deps.forceLeave ?? null,
    logger,
  });
  const groupsByKey = new Map(config.groups.map((g) => [g.key, g]));

  return async (action: SweepAction): Promise<{ outcome: ActionOutcome; detail?: string }> => {
    switch (action.type) {
      case 'deregister': {
        const group = groupsByKey.get(action.group);
        if (!group) return { outcome: 'skipped', detail: 'group not watched' };
        // The txn delete-cas, and the force-leave when there is a token for it.
        calls.consul += deps.forceLeave ? 2 : 1;
        const done = await membership.deregisterNode({
          node: action.node,
          modifyIndex: action.modifyIndex,
          leave: true,
        });
        return done.result === 'skipped' ? { outcome: 'skipped', detail: done.reason } : { outcome: 'done' };
      }
      case 'recreate': {
        const group = groupsByKey.get(action.group);
        if (!group) return { outcome: 'skipped', detail: 'group not watched' };
        await deps.groups.recreate(group, action.instance, recreateRequestId(group.key, action.instanceId));
        return { outcome: 'done' };
      }
      case 'delete-drain': {
        calls.consul++;
        // Only the entry read (it named a gone id): a newer drain of the same node name stays.
        const deleted = await membership.drains.remove(action.node, action.modifyIndex);
        return deleted ? { outcome: 'done' } : { outcome: 'skipped', detail: 'modified-concurrently' };
      }
      case 'delete-record': {
        calls.consul++;
        const deleted = await membership.records.forget(action.instanceId, { index: action.modifyIndex });
        return deleted ? { outcome: 'done' } : { outcome: 'skipped', detail: 'modified-concurrently' };
      }
      case 'remove-unproven': {
        calls.consul++;
        const done = await membership.deregisterNode({
          node: action.node,
          modifyIndex: action.modifyIndex,
          leave: false,
        });
        return done.result === 'skipped' ? { outcome: 'skipped', detail: done.reason } : { outcome: 'done' };
      }
      case 'purge-ledger': {
        calls.consul++;
        const purged = await deps.ledger.purge();
        return { outcome: 'done', detail: `${purged.length} day folders` };
      }
    }
  };
}
