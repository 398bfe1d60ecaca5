import { TransientError } from '../errors';
import type { Maintenance, Membership, StoredRecord } from '../membership';
import type { Decision } from '../outcome';
import type { TargetPlan } from './plan';

/** What became of one target, in the decision vocabulary; `action` is the verb planned or done. */
export interface TargetOutcome {
  instance: string;
  instanceId?: string;
  decision: Extract<Decision, 'applied' | 'planned' | 'skipped' | 'refused' | 'failed' | 'retry'>;
  action?: 'drain' | 'deregister' | 'restore';
  reason: string;
}

/** The plan's outcome: `applied` once its steps ran, `planned` in a dry run, `refused` if unconfirmed. */
export function outcomeOf(plan: TargetPlan, applied: boolean): TargetOutcome {
  const base = { instance: plan.target.name, instanceId: plan.instanceId, reason: plan.reason };
  if (plan.decision === 'skip') return { ...base, decision: 'skipped' };
  if (plan.decision === 'retry') return { ...base, decision: 'retry' };
  // Refused whatever the mode: Compute did not confirm the entry (a stale drain may still be lifted).
  if (plan.decision === 'refuse') return { ...base, decision: 'refused', action: plan.refused };
  return { ...base, decision: applied ? 'applied' : 'planned', action: plan.decision };
}

export type StepExecutor = (plan: TargetPlan, stored: StoredRecord) => Promise<TargetOutcome>;

/** Runs a plan's steps through the membership, then records the outcome; a lost CAS turns a deregistration into a skip. */
export function createStepExecutor(membership: Membership): StepExecutor {
  const { drains, records } = membership;
  return async (plan, stored) => {
    const outcome = outcomeOf(plan, true);
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
          if (done.result === 'skipped') return { ...outcome, decision: 'skipped', reason: done.reason };
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
