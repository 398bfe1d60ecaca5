import { TransientError } from '../errors';
import type { Maintenance, Membership, StoredRecord } from '../membership';
import type { TargetPlan } from './plan';

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

export type StepExecutor = (plan: TargetPlan, stored: StoredRecord) => Promise<TargetOutcome>;

/** Runs a plan's steps through the membership, then records the outcome; a lost CAS turns a deregistration into a skip. */
export function createStepExecutor(membership: Membership): StepExecutor {
  const { drains, records } = membership;
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
        case 'deregister': {
          // The force-leave is its own step: only for a member already out of gossip.
          const done = await membership.deregisterNode({
            node: step.node,
            modifyIndex: step.modifyIndex,
            leave: false,
          });
          if (done.result === 'skipped') return { ...outcome, decision: 'skip', reason: done.reason };
          break;
        }
        case 'force-leave':
          await membership.forceLeave(step.node);
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
