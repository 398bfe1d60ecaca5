import { z } from 'zod';
import type { Logger } from '../logging';
import {
  AutoscalerBusyError,
  AutoscalerError,
  type AutoscalersPort,
  type ScopedAutoscalerRef,
} from './compute';
import type { MetricsPort } from './metrics';
import { parseNotificationText, type Incident } from './notification';
import {
  metricTypes,
  ownsAutoscaler,
  planIncident,
  stateKey,
  type Autoscaler,
  type AutoscalerState,
  type Decision,
  type Plan,
} from './plan';
import { autoscalerKey, matchIncident, type AutoscalerRef, type RuleFile, type Target } from './rules';
import type { StateStore, StoredState } from './state-store';

/** A Pub/Sub message as a `messagePublished` CloudEvent carries it, or as a push subscription posts it. */
const envelopeSchema = z.object({
  message: z.object({
    data: z.string().min(1).max(1_000_000),
    messageId: z.string().max(256).nullish(),
  }),
});

export interface ScalingAlertsDeps {
  rules: RuleFile;
  autoscalers: AutoscalersPort;
  state: StateStore;
  metrics: MetricsPort;
  logger: Logger;
  /** The orchestrator's KV prefix, ending in `/`. */
  kvPrefix: string;
  /** Project of autoscalers whose rule names none (GOOGLE_CLOUD_PROJECT). */
  project?: string;
  /** Plan and log, change nothing (no KV write, no patch). */
  dryRun: boolean;
  now?: () => number;
  /** Attempts per autoscaler when another operation is running (resourceNotReady) or a CAS loses. */
  maxAttempts?: number;
  /** First pause between attempts; doubles each time. */
  retryDelayMs?: number;
}

export type AutoscalerOutcome = {
  autoscaler: string;
  decision: Decision;
  reason: string;
  requestId?: string;
  operation?: string;
  attempts: number;
};

export type AlertOutcome =
  | { status: 'ignored' | 'malformed' | 'unmatched'; reason: string; incidentId?: string }
  | { status: 'done'; incidentId: string; results: AutoscalerOutcome[] };

/** Canonical JSON (sorted keys): recognises our own write after a read back from KV. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * scalingAlerts' handler: a Pub/Sub message holding a Cloud Monitoring notification → for each
 * autoscaler the matched rule names: read it and our record, plan, write the record (CAS) before
 * sending the patch, send it with the plan's request id and await the operation. Every decision is
 * logged as structured JSON with its reason and published as metrics.
 *
 * Resolves (acknowledge) for malformed, ignored or unmatched notifications and for permanent
 * refusals; throws (redelivery) on transient failures. A redelivery acts once: the plan's request id
 * is the same, and the record already holds what was written.
 */
export function createScalingAlertsHandler(deps: ScalingAlertsDeps) {
  const { logger } = deps;
  const clock = deps.now ?? Date.now;
  const maxAttempts = deps.maxAttempts ?? 5;
  const retryDelayMs = deps.retryDelayMs ?? 500;

  async function publish(points: Plan['metrics'], incidentId: string) {
    try {
      await deps.metrics.publish(points, clock());
    } catch (err) {
      // Metrics are reporting, not control: a failure is logged and the decision stands.
      logger.warn({ incidentId, reason: (err as Error).message }, 'scalingAlerts metrics not published');
    }
  }

  /** Puts back the record as it was before our write, if ours is still the one stored. */
  async function rollBack(key: string, written: AutoscalerState, before: StoredState | null) {
    const now = await deps.state.get(key);
    if (!now || canonical(now.value) !== canonical(written)) return;
    if (before?.value) await deps.state.cas(key, before.value, now.index);
    else await deps.state.remove(key, now.index);
  }

  async function forAutoscaler(
    incident: Incident,
    target: Target,
    ref: AutoscalerRef,
  ): Promise<{ outcome: AutoscalerOutcome; metrics: Plan['metrics'] }> {
    const project = ref.project ?? deps.project ?? incident.project;
    const name = autoscalerKey(ref);
    const base = { incidentId: incident.id, state: incident.state, tier: target.tierName, rule: target.rule };
    const refuse = (reason: string, attempts: number) => {
      logger.warn(
        { ...base, autoscaler: name, decision: 'refuse', reason },
        'scalingAlerts decision: refused',
      );
      return {
        outcome: { autoscaler: name, decision: 'refuse' as const, reason, attempts },
        metrics: [
          {
            type: metricTypes.decision,
            labels: { autoscaler: name, tier: target.tierName, decision: 'refuse' },
            value: 1,
          },
        ],
      };
    };
    if (project === undefined) return refuse('no project: the rule names none and none is configured', 0);
    const scoped: ScopedAutoscalerRef = { ...ref, project };
    const key = stateKey(deps.kvPrefix, scoped);

    // After a refused patch, the next attempt plans again from the record as it was before our
    // own (unapplied) write, at the same time: the same lease and request id, no cooldown from it.
    let ours: { written: AutoscalerState; before: StoredState | null; now: number } | undefined;
    let delay = retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      let autoscaler: Autoscaler | null;
      let stored: StoredState | null;
      try {
        [autoscaler, stored] = await Promise.all([deps.autoscalers.get(scoped), deps.state.get(key)]);
      } catch (err) {
        if (err instanceof AutoscalerError && !err.transient) return refuse(err.message, attempt);
        throw err;
      }
      if (!autoscaler) {
        if (ours) await rollBack(key, ours.written, ours.before);
        return refuse('not-found: no such autoscaler', attempt);
      }
      // Ownership by label costs two reads (group, template): only when the name does not decide.
      const ownerLabels =
        deps.rules.ownership.label !== undefined &&
        !ownsAutoscaler(autoscaler.name, { ...deps.rules.ownership, label: undefined })
          ? await deps.autoscalers.ownerLabels(scoped, autoscaler)
          : undefined;
      const replan = ours !== undefined && canonical(stored?.value) === canonical(ours.written);
      const before = replan && ours ? ours.before : stored;
      const now = replan && ours ? ours.now : clock();
      const plan = planIncident(incident, target, {
        rules: deps.rules,
        tierName: target.tierName,
        tier: target.tier,
        ref: scoped,
        autoscaler,
        ownerLabels,
        state: before?.value ?? null,
        now,
      });
      const fields = {
        ...base,
        autoscaler: plan.autoscaler,
        decision: plan.decision,
        reason: plan.reason,
        requestId: plan.requestId,
        patch: plan.patch?.autoscalingPolicy,
        withheld: plan.withheld.length ? plan.withheld : undefined,
        refused: plan.refused.length ? plan.refused : undefined,
        attempt,
      };
      const result = (extra: Partial<AutoscalerOutcome> = {}) => ({
        outcome: {
          autoscaler: plan.autoscaler,
          decision: plan.decision,
          reason: plan.reason,
          requestId: plan.requestId,
          attempts: attempt,
          ...extra,
        },
        metrics: plan.metrics,
      });
      if (deps.dryRun) {
        logger.info({ ...fields, dryRun: true }, `scalingAlerts decision (dry run): ${plan.decision}`);
        return result();
      }

      if (plan.state) {
        // Against the index read this time: a record another delivery changed meanwhile is read again.
        const index = stored?.index ?? 0;
        if (!(await deps.state.cas(key, plan.state, index))) {
          if (attempt >= maxAttempts) throw new Error(`${key}: record changed concurrently ${attempt} times`);
          continue;
        }
        ours = { written: plan.state, before, now };
      }
      if (!plan.patch || !plan.requestId) {
        const level = plan.decision === 'refuse' ? 'warn' : 'info';
        logger[level](fields, `scalingAlerts decision: ${plan.decision}`);
        return result();
      }
      try {
        const applied = await deps.autoscalers.apply(scoped, autoscaler, plan.patch, plan.requestId);
        logger.info(
          { ...fields, operation: applied.operation, method: applied.method },
          'scalingAlerts decision: applied',
        );
        return result({ operation: applied.operation });
      } catch (err) {
        if (!(err instanceof AutoscalerError)) throw err;
        const reason = err.message;
        if (err instanceof AutoscalerBusyError && attempt < maxAttempts) {
          logger.info({ ...fields, reason }, 'scalingAlerts: autoscaler busy, reading it again');
          await sleep(delay);
          delay *= 2;
          continue;
        }
        // Refused before it started: the record goes back, so a redelivery or a later notification
        // is not held back by a change that never happened.
        if (err.refused && ours) await rollBack(key, ours.written, ours.before);
        if (err.transient) {
          logger.error(
            { ...fields, decision: 'retry', reason },
            'scalingAlerts: change not applied, redelivery',
          );
          throw err;
        }
        logger.error({ ...fields, decision: 'refuse', reason }, 'scalingAlerts decision: failed');
        return {
          outcome: { autoscaler: plan.autoscaler, decision: 'refuse', reason, attempts: attempt },
          metrics: plan.metrics.map((m) =>
            m.type === metricTypes.decision ? { ...m, labels: { ...m.labels, decision: 'refuse' } } : m,
          ),
        };
      }
    }
  }

  return async function handle(data: unknown): Promise<AlertOutcome> {
    const envelope = envelopeSchema.safeParse(data);
    if (!envelope.success) {
      const reason = 'not a Pub/Sub message (no message.data)';
      logger.warn({ decision: 'malformed', reason }, 'scalingAlerts: acknowledged');
      return { status: 'malformed', reason };
    }
    const messageId = envelope.data.message.messageId ?? undefined;
    const text = Buffer.from(envelope.data.message.data, 'base64').toString('utf8');
    const parsed = parseNotificationText(text);
    if (!parsed.ok) {
      logger.warn(
        { messageId, incidentId: parsed.incidentId, decision: parsed.outcome, reason: parsed.reason },
        `scalingAlerts: ${parsed.outcome} notification acknowledged, nothing changes`,
      );
      return { status: parsed.outcome, reason: parsed.reason, incidentId: parsed.incidentId };
    }
    const incident = parsed.incident;
    const match = matchIncident(incident, deps.rules);
    if (!match.ok) {
      logger.warn(
        {
          messageId,
          incidentId: incident.id,
          policy: incident.policyName,
          decision: 'unmatched',
          reason: match.reason,
        },
        'scalingAlerts: no change for this incident',
      );
      return { status: 'unmatched', reason: match.reason, incidentId: incident.id };
    }
    const results: AutoscalerOutcome[] = [];
    const metrics: Plan['metrics'] = [];
    try {
      // One autoscaler after the other: their guardrails are independent, and a failure throws
      // for all (redelivery acts once on the ones already done).
      for (const ref of match.target.autoscalers) {
        const r = await forAutoscaler(incident, match.target, ref);
        results.push(r.outcome);
        metrics.push(...r.metrics);
      }
    } finally {
      if (!deps.dryRun) await publish(metrics, incident.id);
    }
    return { status: 'done', incidentId: incident.id, results };
  };
}
