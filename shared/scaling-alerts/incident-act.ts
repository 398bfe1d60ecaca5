import { TransientError } from '../errors';
import type { Autoscaler } from '../gcp/autoscaler-schema';
import type { GroupErrorsApi } from '../gcp/groups';
import { actOnAutoscaler, type ActDeps, type ActResult } from './act';
import { readGrowth, type Growth } from './growth';
import type { ScalingAlertsDeps } from './handler';
import type { Incident } from './notification';
import { decisionPoint, planIncident } from './plan';
import { autoscalerKey, type AutoscalerRef, type Target } from './rules';
import { stateKey } from './state';

/**
 * What one confirmed, matched incident does to one autoscaler its rule names: the one loop of act.ts
 * (read, plan with planIncident, record by CAS, patch), scoped to the rule's project or the
 * configured one. `endOnly`: the incident's policy is gone, so only the lease it holds may end.
 */
export function createIncidentAct(deps: ScalingAlertsDeps, clock: () => number) {
  const { logger } = deps;
  const act: ActDeps = {
    rules: deps.rules,
    autoscalers: deps.autoscalers,
    state: deps.state,
    logger,
    clock,
    maxAttempts: deps.maxAttempts ?? 5,
    retryDelayMs: deps.retryDelayMs ?? 500,
    scheduleCheck: deps.scheduleCheck,
  };

  /** A failed read decides nothing: the floor is raised as asked, and the line says so. */
  const growthOf =
    (api: GroupErrorsApi, fields: Record<string, unknown>) =>
    async (autoscaler: Autoscaler): Promise<Growth | undefined> => {
      try {
        return (await readGrowth(api, autoscaler, clock()))?.growth;
      } catch (err) {
        const reason = (err as Error).message;
        logger.warn(
          { ...fields, autoscaler: autoscaler.name, reason },
          'scalingAlerts: group errors not read',
        );
        return undefined;
      }
    };

  return async function forAutoscaler(
    incident: Incident,
    target: Target,
    ref: AutoscalerRef,
    endOnly: boolean,
  ): Promise<ActResult> {
    const project = ref.project ?? deps.project ?? incident.project;
    const name = autoscalerKey(ref);
    const fields = {
      incidentId: incident.id,
      state: incident.state,
      tier: target.tierName,
      rule: target.rule,
    };
    if (project === undefined) {
      const reason = 'no project: the rule names none and none is configured';
      logger.warn(
        { ...fields, autoscaler: name, decision: 'refused', reason },
        'scalingAlerts decision: refused',
      );
      return {
        outcome: { autoscaler: name, decision: 'refused', reason, attempts: 0 },
        metrics: [decisionPoint(name, target.tierName, 'refused')],
      };
    }
    const scoped = { ...ref, project };
    try {
      return await actOnAutoscaler(act, {
        ref: scoped,
        name: autoscalerKey(scoped),
        tier: target.tierName,
        key: stateKey(deps.kvPrefix, scoped),
        dryRun: deps.dryRun,
        missing: 'refused',
        message: 'scalingAlerts decision',
        fields,
        ...(deps.groups && incident.state === 'open' && target.change.type === 'raise-min'
          ? { growth: growthOf(deps.groups, fields) }
          : {}),
        plan: (input) =>
          planIncident(
            incident,
            target,
            {
              rules: deps.rules,
              tierName: target.tierName,
              tier: target.tier,
              ref: scoped,
              ...input,
            },
            { endOnly },
          ),
      });
    } catch (err) {
      if (err instanceof TransientError)
        logger.error(
          { ...fields, autoscaler: name, decision: 'retry', reason: (err as Error).message },
          'scalingAlerts: change not applied, redelivery',
        );
      throw err;
    }
  };
}
