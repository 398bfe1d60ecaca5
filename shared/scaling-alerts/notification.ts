import { z } from 'zod';

/**
 * Cloud Monitoring incident notifications as published to a Pub/Sub notification channel, schema
 * version 1.2. Reference: "Create and manage notification channels", section on the Pub/Sub and
 * webhook schema, https://cloud.google.com/monitoring/support/notification-options (field names
 * snake_case; `state` lower-case `open`/`closed`; `started_at`/`ended_at` epoch seconds, `ended_at`
 * null while open; `observed_value` and `threshold_value` strings; `documentation` an object).
 * Every value here is attacker-controlled as far as the planner is concerned: strings are bounded
 * and label maps are limited before rules compare them.
 *
 * Not 1.2: the console's "send test notification" publishes `version: "test"` with `state: "OPEN"`
 * and a string `documentation`; it is acknowledged and changes nothing. An incident closed because
 * its policy or condition was deleted or changed carries `state: "closed"` and the text "Incident
 * cancelled because …" in `observed_value` (and so in `summary`): it counts as closed.
 */

const shortText = z.string().max(1024);
/**
 * Monitoring's own bounds ("Cloud Monitoring quotas and limits",
 * https://cloud.google.com/monitoring/quotas: label keys up to 100 characters, label values up
 * to 1,024); the count stays bounded too.
 */
export const labelBounds = { key: 100, value: 1024, count: 64 } as const;
const labelMap = z
  .record(z.string().max(labelBounds.key), z.string().max(labelBounds.value))
  .refine((m) => Object.keys(m).length <= labelBounds.count, `at most ${labelBounds.count} labels`);
/** Epoch seconds as Google sends them; some relays turn numbers into strings. */
const epochSeconds = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^[0-9]{1,12}$/)
    .transform(Number),
]);

/** Google's ids look like `0.nl3v8fkx2a1q`; anything else that could be a path or `__proto__` is refused. */
export const incidentIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'a letter or digit, then letters, digits, . _ : -');

export const incidentSchema = z.object({
  incident_id: incidentIdSchema,
  state: z.string().max(32),
  started_at: epochSeconds,
  ended_at: epochSeconds.nullish(),
  policy_name: shortText.nullish(),
  policy_user_labels: labelMap.nullish(),
  condition_name: shortText.nullish(),
  condition: z.object({ name: shortText.nullish() }).nullish(),
  metric: z.object({ type: shortText.nullish(), labels: labelMap.nullish() }).nullish(),
  resource: z.object({ type: shortText.nullish(), labels: labelMap.nullish() }).nullish(),
  resource_name: shortText.nullish(),
  scoping_project_id: shortText.nullish(),
  observed_value: z.union([z.string().max(4096), z.number()]).nullish(),
  threshold_value: z.union([z.string().max(256), z.number()]).nullish(),
  summary: z.string().max(8192).nullish(),
  url: shortText.nullish(),
  severity: shortText.nullish(),
});

export const notificationSchema = z.object({
  version: z.string().max(32),
  incident: incidentSchema,
});

export type IncidentState = 'open' | 'closed';

export interface Incident {
  id: string;
  state: IncidentState;
  /** Closed because its policy or condition was deleted or modified, not because it recovered. */
  cancelled: boolean;
  policyName: string;
  /** `projects/P/alertPolicies/<id>` taken from `condition.name`, when present. */
  policyId?: string;
  /** The condition's id within the policy (`…/conditions/<id>` of `condition.name`). */
  conditionId?: string;
  conditionName?: string;
  userLabels: Record<string, string>;
  metricType?: string;
  metricLabels: Record<string, string>;
  resourceType?: string;
  resourceLabels: Record<string, string>;
  project?: string;
  /** ms since the epoch. */
  startedAt: number;
  /** ms since the epoch; set when closed. */
  endedAt?: number;
  /** When this state began (`endedAt` when closed): orders notifications of one incident. */
  time: number;
  observedValue?: number;
  thresholdValue?: number;
}

export type NotificationResult =
  | { ok: true; incident: Incident }
  | { ok: false; outcome: 'ignored' | 'malformed'; reason: string; incidentId?: string };

export const supportedVersion = '1.2';

const cancelledPattern = /\bIncident cancelled\b/i;

const numeric = (v: string | number | null | undefined): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string' || !/^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(v.trim())) return undefined;
  return Number(v);
};

const describeIssues = (error: z.ZodError) =>
  error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');

/** Validates a decoded notification and says what it means; never throws. */
export function parseNotification(input: unknown): NotificationResult {
  const head = z.object({ version: z.string().max(32) }).safeParse(input);
  if (!head.success) {
    return { ok: false, outcome: 'malformed', reason: 'not a Cloud Monitoring notification: no version' };
  }
  const version = head.data.version;
  if (version !== supportedVersion) {
    const reason =
      version === 'test'
        ? "the console's test notification: acknowledged, nothing changes"
        : `notification schema version ${JSON.stringify(version)} is not ${supportedVersion}: ignored`;
    return { ok: false, outcome: 'ignored', reason };
  }
  const parsed = notificationSchema.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      outcome: 'malformed',
      reason: `invalid 1.2 notification: ${describeIssues(parsed.error)}`,
    };
  }
  const i = parsed.data.incident;
  const reject = (outcome: 'ignored' | 'malformed', reason: string): NotificationResult => ({
    ok: false,
    outcome,
    reason,
    incidentId: i.incident_id,
  });
  if (i.state !== 'open' && i.state !== 'closed') {
    return reject('ignored', `state ${JSON.stringify(i.state)} is neither open nor closed`);
  }
  const startedAt = i.started_at * 1000;
  const endedAt = i.ended_at == null ? undefined : i.ended_at * 1000;
  if (i.state === 'closed' && endedAt === undefined)
    return reject('malformed', 'closed incident without ended_at');
  if (endedAt !== undefined && endedAt < startedAt)
    return reject('malformed', 'ended_at is before started_at');
  const observedText = typeof i.observed_value === 'string' ? i.observed_value : '';
  const cancelled =
    i.state === 'closed' && (cancelledPattern.test(observedText) || cancelledPattern.test(i.summary ?? ''));
  const named = /^(projects\/[^/]+\/alertPolicies\/[^/]+)\/conditions\/([^/]+)$/.exec(
    i.condition?.name ?? '',
  );
  const incident: Incident = {
    id: i.incident_id,
    state: i.state,
    cancelled,
    policyName: i.policy_name ?? '',
    policyId: named?.[1],
    conditionId: named?.[2],
    conditionName: i.condition_name ?? undefined,
    userLabels: i.policy_user_labels ?? {},
    metricType: i.metric?.type ?? undefined,
    metricLabels: i.metric?.labels ?? {},
    resourceType: i.resource?.type ?? undefined,
    resourceLabels: i.resource?.labels ?? {},
    project: i.scoping_project_id ?? i.resource?.labels?.project_id ?? undefined,
    startedAt,
    endedAt,
    time: endedAt ?? startedAt,
    observedValue: cancelled ? undefined : numeric(i.observed_value),
    thresholdValue: numeric(i.threshold_value),
  };
  return { ok: true, incident };
}

/** Parses the text of a Pub/Sub message's data (already base64-decoded); never throws. */
export function parseNotificationText(text: string): NotificationResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, outcome: 'malformed', reason: 'message data is not JSON' };
  }
  return parseNotification(data);
}
