import type { AutoscalersPort } from '../gcp/autoscalers';
import type { GroupErrorsApi } from '../gcp/groups';
import type { MetricPoint, MetricsWriter } from '../gcp/monitoring';
import type { Logger } from '../logging';
import type { Decision } from '../outcome';
import { decodePubsubMessage } from '../pubsub';
import type { AutoscalerOutcome } from './act';
import {
  clampTimes,
  confirmIncident,
  refusedIncidentsMetric,
  type Confirmation,
  type PoliciesPort,
} from './confirm';
import { parseNotificationText } from './notification';
import { createIncidentAct } from './incident-act';
import { matchIncident, type RuleFile } from './rules';
import type { ScheduleCheck } from './schedule';
import type { StateStore } from './state';

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
  const forAutoscaler = createIncidentAct(deps, clock);

  async function publish(points: MetricPoint[], incidentId: string) {
    if (deps.dryRun || deps.project === undefined || !points.length) return;
    try {
      await deps.metrics.write(deps.project, points, clock());
    } catch (err) {
      // Metrics are reporting, not control: a failure is logged and the decision stands.
      logger.warn({ incidentId, reason: (err as Error).message }, 'scalingAlerts metrics not published');
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
