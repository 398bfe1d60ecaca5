import { TransientError } from '../errors';
import type { Autoscaler } from '../gcp/autoscaler-schema';
import type { AutoscalersPort } from '../gcp/autoscalers';
import type { GroupErrorsApi } from '../gcp/groups';
import type { MetricPoint, MetricsWriter } from '../gcp/monitoring';
import type { Logger } from '../logging';
import type { Decision } from '../outcome';
import { decodePubsubMessage } from '../pubsub';
import { actOnAutoscaler, type ActDeps, type ActResult, type AutoscalerOutcome } from './act';
import {
  clampTimes,
  confirmIncident,
  refusedIncidentsMetric,
  type Confirmation,
  type PoliciesPort,
} from './confirm';
import { readGrowth, type Growth } from './growth';
import { parseNotificationText, type Incident } from './notification';
import { decisionPoint, planIncident } from './plan';
import { autoscalerKey, matchIncident, type AutoscalerRef, type RuleFile, type Target } from './rules';
import type { ScheduleCheck } from './schedule';
import { stateKey, type StateStore } from './state';

/** Largest notification accepted: 750,000 bytes, 1,000,000 characters of base64 (Monitoring's are a few kB). */
const maxNotificationBytes = 750_000;

export interface ScalingAlertsDeps {
  rules: RuleFile;
  autoscalers: AutoscalersPort;
  /** Cloud Monitoring's alert policies: an incident is acted on only as its policy confirms it. */
  policies: PoliciesPort;
  state: StateStore;
  metrics: MetricsWriter;
  logger: Logger;
  /** The orchestrator's KV prefix, ending in `/`. */
  kvPrefix: string;
  /** Project of autoscalers whose rule names none (GOOGLE_CLOUD_PROJECT); also where metrics go. */
  project?: string;
  /** Plan and log, change nothing (no KV write, no patch). */
  dryRun: boolean;
  now?: () => number;
  /** Attempts per autoscaler when another operation is running (resourceNotReady) or a CAS loses. */
  maxAttempts?: number;
  /** First pause between attempts; doubles each time. */
  retryDelayMs?: number;
  /** How long a written floor schedule may take to read ACTIVE before minNumReplicas holds it. */
  scheduleCheck?: ScheduleCheck;
  /** The groups' creation errors and sizes: a floor a stuck group cannot reach is refused. */
  groups?: GroupErrorsApi;
}

export type { AutoscalerOutcome };

/** A delivery not acted on (`rejected`: not a notification; `ignored`: not for us), or the autoscalers' outcomes. */
export type AlertOutcome =
  | { decision: Extract<Decision, 'rejected' | 'ignored' | 'refused'>; reason: string; incidentId?: string }
  | { incidentId: string; results: AutoscalerOutcome[] };

/**
 * scalingAlerts' handler: a Pub/Sub message holding a Cloud Monitoring notification → for each
 * autoscaler the matched rule names, the one loop of act.ts (read, plan, record by CAS, patch).
 * Every decision is logged as structured JSON with its reason and published as metrics.
 *
 * Resolves (acknowledge) for rejected or ignored notifications and for refusals and permanent
 * failures; throws (redelivery) on transient failures. A redelivery acts once: the plan's request id
 * is the same, and the record already holds what was written.
 */
export function createScalingAlertsHandler(deps: ScalingAlertsDeps) {
  const { logger } = deps;
  const clock = deps.now ?? Date.now;
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

  async function publish(points: MetricPoint[], incidentId: string) {
    if (deps.dryRun || deps.project === undefined || !points.length) return;
    try {
      await deps.metrics.write(deps.project, points, clock());
    } catch (err) {
      // Metrics are reporting, not control: a failure is logged and the decision stands.
      logger.warn({ incidentId, reason: (err as Error).message }, 'scalingAlerts metrics not published');
    }
  }

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

  async function forAutoscaler(
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
  }

  return async function handle(data: unknown): Promise<AlertOutcome> {
    const message = decodePubsubMessage(data, maxNotificationBytes);
    if (!message.ok) {
      logger.warn({ decision: 'rejected', reason: message.reason }, 'scalingAlerts: acknowledged');
      return { decision: 'rejected', reason: message.reason };
    }
    const { messageId } = message;
    const parsed = parseNotificationText(message.text);
    if (!parsed.ok) {
      const decision = parsed.outcome === 'malformed' ? 'rejected' : 'ignored';
      logger.warn(
        { messageId, incidentId: parsed.incidentId, decision, reason: parsed.reason },
        `scalingAlerts: ${parsed.outcome} notification acknowledged, nothing changes`,
      );
      return { decision, reason: parsed.reason, incidentId: parsed.incidentId };
    }
    const claimed = clampTimes(parsed.incident, clock());
    let confirmed: Confirmation;
    try {
      confirmed = await confirmIncident(claimed, deps.project, deps.policies);
    } catch (err) {
      const reason = (err as Error).message;
      logger.error(
        { messageId, incidentId: claimed.id, decision: 'retry', reason },
        'scalingAlerts: policy not read, redelivery',
      );
      throw err;
    }
    // A close whose policy was deleted or disabled (Monitoring cancels its incidents) may still end
    // the lease that very policy holds, and nothing else.
    const endOnly =
      !confirmed.ok &&
      claimed.state === 'closed' &&
      confirmed.policy !== undefined &&
      (confirmed.kind === 'policy-not-found' || confirmed.kind === 'policy-disabled');
    if (!confirmed.ok && !endOnly) {
      const reason = `unconfirmed: ${confirmed.reason}`;
      logger.warn(
        { messageId, incidentId: claimed.id, policy: claimed.policyName, decision: 'refused', reason },
        'scalingAlerts: incident not confirmed by its policy, nothing changes',
      );
      await publish(
        [{ type: refusedIncidentsMetric, labels: { reason: confirmed.kind }, value: 1 }],
        claimed.id,
      );
      return { decision: 'refused', reason, incidentId: claimed.id };
    }
    const incident = confirmed.ok ? confirmed.incident : { ...claimed, policyId: confirmed.policy };
    const match = matchIncident(incident, deps.rules);
    if (!match.ok) {
      const reason = `unmatched: ${match.reason}`;
      logger.warn(
        { messageId, incidentId: incident.id, policy: incident.policyName, decision: 'ignored', reason },
        'scalingAlerts: no change for this incident',
      );
      return { decision: 'ignored', reason, incidentId: incident.id };
    }
    const results: AutoscalerOutcome[] = [];
    const metrics: MetricPoint[] = [];
    try {
      // One autoscaler after the other: their guardrails are independent, and a failure throws
      // for all (redelivery acts once on the ones already done).
      for (const ref of match.target.autoscalers) {
        const r = await forAutoscaler(incident, match.target, ref, endOnly);
        results.push(r.outcome);
        metrics.push(...r.metrics);
      }
    } finally {
      await publish(metrics, incident.id);
    }
    return { incidentId: incident.id, results };
  };
}
