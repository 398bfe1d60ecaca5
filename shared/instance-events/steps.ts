import type { ConsulClient } from '../consul/client';
import { TransientError } from '../errors';
import type { DrainMechanism } from './drain';
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
  consul: {
    catalog: Pick<ConsulClient['catalog'], 'deleteNodeCas'>;
    agent: Pick<ConsulClient['agent'], 'forceLeave'>;
  };
  drain: DrainMechanism;
  records: RecordStore;
}

export type StepExecutor = (plan: TargetPlan, stored: StoredRecord) => Promise<TargetOutcome>;

/** Runs a plan's steps, then records the outcome; a lost CAS turns a deregistration into a skip. */
export function createStepExecutor({ consul, drain, records }: StepExecutorDeps): StepExecutor {
  return async (plan, stored) => {
    const outcome = outcomeOf(plan);
    if (plan.decision === 'retry') throw new TransientError(`${plan.target.name}: ${plan.reason}`);
    let maintenance: Maintenance | null | undefined;
    for (const step of plan.steps) {
      switch (step.type) {
        case 'set-maintenance': {
          const mode = await drain.set(step);
          maintenance = { mode, node: step.node, reason: step.reason, eventAt: plan.mark?.at ?? 0 };
          outcome.reason = `${plan.reason} (maintenance via ${mode})`;
          break;
        }
        case 'clear-maintenance':
          await drain.clear(step);
          maintenance = null;
          break;
        case 'forget-maintenance':
          maintenance = null;
          break;
        case 'deregister':
          if ((await consul.catalog.deleteNodeCas(step.node, step.modifyIndex)) === 'conflict') {
            // Re-registered between our read and the delete: the newer registration wins.
            return { ...outcome, decision: 'skip', reason: 'modified-concurrently' };
          }
          break;
        case 'force-leave':
          await consul.agent.forceLeave(step.node);
          break;
        case 'forget-instance':
          await records.forget(step.instanceId, stored);
          break;
      }
    }
    if (plan.instanceId && plan.mark) await records.update(plan.instanceId, stored, plan.mark, maintenance);
    return outcome;
  };
}
