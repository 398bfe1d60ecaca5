import type { ConsulClient } from '../consul/client';
import { TransientError } from '../errors';
import type { Logger } from '../logging';
import type { DrainList } from './drain';
import type { Maintenance, TargetPlan } from './plan';
import type { RecordStore, StoredRecord } from './records';

export interface TargetOutcome {
  instance: string;
  instanceId?: string;
  decision: TargetPlan['decision'] | 'failed';
  reason: string;
}

export const outcomeOf = (plan: TargetPlan): TargetOutcome => ({
  instance: plan.target.name,
  instanceId: plan.instanceId,
  decision: plan.decision,
  reason: plan.reason,
});

export interface StepExecutorDeps {
  consul: { catalog: Pick<ConsulClient['catalog'], 'deleteNodeCas' | 'node'> };
  /** Force-leave with the separately held operator token; null when none is configured. */
  forceLeave: ((node: string) => Promise<unknown>) | null;
  drains: DrainList;
  records: RecordStore;
  logger: Logger;
}

export type StepExecutor = (plan: TargetPlan, stored: StoredRecord) => Promise<TargetOutcome>;

/** Runs a plan's steps, then records the outcome; a lost CAS turns a deregistration into a skip. */
export function createStepExecutor({
  consul,
  forceLeave,
  drains,
  records,
  logger,
}: StepExecutorDeps): StepExecutor {
  return async (plan, stored) => {
    const outcome = outcomeOf(plan);
    if (plan.decision === 'retry') throw new TransientError(`${plan.target.name}: ${plan.reason}`);
    let maintenance: Maintenance | null | undefined;
    let forgotten = false;
    for (const step of plan.steps) {
      switch (step.type) {
        case 'drain':
          await drains.set(step.node, step.instanceId, step.since);
          maintenance = { node: step.node, eventAt: plan.mark?.at ?? step.since };
          break;
        case 'undrain':
          await drains.clear(step.node, step.instanceId);
          maintenance = null;
          break;
        case 'deregister':
          if ((await consul.catalog.deleteNodeCas(step.node, step.modifyIndex)) === 'conflict') {
            // Re-registered between our read and the delete: the newer registration wins. Already
            // deleted (an earlier attempt, the sweep): the failed gossip member still has to leave.
            if ((await consul.catalog.node(step.node)) !== null)
              return { ...outcome, decision: 'skip', reason: 'modified-concurrently' };
          }
          break;
        case 'force-leave':
          if (forceLeave) await forceLeave(step.node);
          else
            logger.warn(
              { instance: step.node },
              'no force-leave token configured: failed member left to reap',
            );
          break;
        case 'forget-instance':
          await records.forget(step.instanceId, stored);
          forgotten = true;
          break;
      }
    }
    if (plan.instanceId && !forgotten && (plan.mark || maintenance !== undefined))
      await records.update(plan.instanceId, stored, plan.mark, maintenance);
    return outcome;
  };
}
