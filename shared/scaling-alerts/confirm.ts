import { z } from 'zod';
import type { GcpClients } from '../gcp/client';
import { classifyGoogleError, isNotFound } from '../gcp/errors';
import { customMetric } from '../gcp/monitoring';
import type { Incident } from './notification';

/**
 * Anyone who can publish on the topic can write any notification, so a notification is only a
 * claim: before a rule is matched, the incident's alert policy is read from Cloud Monitoring
 * (`alertPolicies.get`, https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies/get)
 * in the configured project, and the rules match on what the policy really is (its display name
 * and user labels), never on the message's copy of them.
 */

/** The fields of an AlertPolicy this function reads (REST JSON; the Node client wraps `enabled`). */
export const alertPolicySchema = z.object({
  name: z.string().max(512),
  displayName: z.string().max(1024).nullish(),
  userLabels: z.record(z.string().max(100), z.string().max(1024)).nullish(),
  enabled: z.union([z.boolean(), z.object({ value: z.boolean().nullish() })]).nullish(),
  conditions: z
    .array(
      z.looseObject({
        name: z.string().max(1024).nullish(),
        conditionThreshold: z.object({ filter: z.string().max(4096).nullish() }).nullish(),
        conditionAbsent: z.object({ filter: z.string().max(4096).nullish() }).nullish(),
      }),
    )
    .max(16)
    .nullish(),
});
export type AlertPolicy = z.infer<typeof alertPolicySchema>;

/** Notifications not acted on because their policy did not confirm them, labelled `reason` (`Unconfirmed['kind']`). */
export const refusedIncidentsMetric = customMetric('scaling_alerts/refused_incidents');

/** Reads an alert policy by resource name; null when it does not exist. */
export interface PoliciesPort {
  get(name: string): Promise<AlertPolicy | null>;
}

export function createAlertPolicies(clients: GcpClients, options: { timeoutMs?: number } = {}): PoliciesPort {
  const call = { timeout: options.timeoutMs ?? 10_000, maxRetries: 1 };
  return {
    async get(name) {
      let raw: unknown;
      try {
        [raw] = await (await clients.ready('alertPolicies')).getAlertPolicy({ name }, call);
      } catch (err) {
        if (isNotFound(err)) return null;
        throw classifyGoogleError(err, `alertPolicies.get ${name}`);
      }
      const parsed = alertPolicySchema.safeParse(raw);
      if (!parsed.success) throw classifyGoogleError(new Error('unexpected AlertPolicy'), name);
      return parsed.data;
    },
  };
}

/** Why an incident is not acted on, as a short class (metric label) and the words for the log. */
export type Unconfirmed = {
  ok: false;
  kind: 'no-project' | 'no-policy' | 'policy-not-found' | 'policy-disabled' | 'condition-not-in-policy';
  reason: string;
  /** The policy's name in our project, once the message named one. */
  policy?: string;
};
export type Confirmation = { ok: true; incident: Incident } | Unconfirmed;

const enabledOf = (p: AlertPolicy) =>
  p.enabled == null ? true : typeof p.enabled === 'boolean' ? p.enabled : p.enabled.value !== false;

/**
 * The incident as its policy confirms it, or why not. Only the policy's id is taken from the
 * message (from `condition.name`); the project is ours. The policy must exist, be enabled and hold
 * the condition the incident names; the message's policy name and labels are replaced by the
 * policy's own, and its metric type is kept only when that condition's filter names it.
 */
export async function confirmIncident(
  incident: Incident,
  project: string | undefined,
  policies: PoliciesPort,
): Promise<Confirmation> {
  const no = (kind: Unconfirmed['kind'], reason: string, policy?: string): Unconfirmed => ({
    ok: false,
    kind,
    reason,
    ...(policy !== undefined ? { policy } : {}),
  });
  if (project === undefined) return no('no-project', 'no project is configured to read alert policies in');
  const id = /\/alertPolicies\/([0-9A-Za-z_-]{1,64})$/.exec(incident.policyId ?? '')?.[1];
  if (id === undefined) return no('no-policy', 'the notification names no alert policy condition');
  const name = `projects/${project}/alertPolicies/${id}`;
  const policy = await policies.get(name);
  if (!policy) return no('policy-not-found', `alert policy ${name} does not exist`, name);
  if (!enabledOf(policy)) return no('policy-disabled', `alert policy ${name} is disabled`, name);
  const conditionId = incident.conditionId;
  const condition = (policy.conditions ?? []).find(
    (c) => c.name != null && c.name.split('/conditions/')[1] === conditionId,
  );
  if (!condition) return no('condition-not-in-policy', `alert policy ${name} has no such condition`, name);
  const filter = condition.conditionThreshold?.filter ?? condition.conditionAbsent?.filter ?? '';
  const metricType =
    incident.metricType !== undefined && filter.includes(`"${incident.metricType}"`)
      ? incident.metricType
      : undefined;
  return {
    ok: true,
    incident: {
      ...incident,
      policyName: policy.displayName ?? '',
      policyId: name,
      userLabels: policy.userLabels ?? {},
      metricType,
    },
  };
}

/** How far a notification's times may lie from now: back, the longest a tombstone is kept; ahead, clock skew. */
export const timeBounds = { maxAgeMs: 7 * 24 * 3600_000, skewMs: 5 * 60_000 } as const;

/** `started_at`/`ended_at` clamped to [now − max age, now + skew]: a publisher chooses them. */
export function clampTimes(incident: Incident, now: number): Incident {
  const clamp = (t: number) => Math.min(Math.max(t, now - timeBounds.maxAgeMs), now + timeBounds.skewMs);
  const startedAt = clamp(incident.startedAt);
  const endedAt = incident.endedAt === undefined ? undefined : Math.max(clamp(incident.endedAt), startedAt);
  return { ...incident, startedAt, endedAt, time: endedAt ?? startedAt };
}
