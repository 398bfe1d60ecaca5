import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { MonitoringError } from './monitoring';

/**
 * The request bodies of Cloud Monitoring's `projects.alertPolicies` and
 * `projects.notificationChannels` (REST JSON of google.monitoring.v3 AlertPolicy /
 * NotificationChannel: https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies
 * and https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.notificationChannels), limited
 * to what the emulator evaluates, and the stored resources made from them.
 */

export const notFound = (what: string) =>
  new MonitoringError(404, 'NOT_FOUND', `Requested entity was not found: ${what}`);
export const invalid = (message: string) => new MonitoringError(400, 'INVALID_ARGUMENT', message);

/** google.protobuf.Duration in JSON: `"60s"`, `"1.5s"`. */
const durationSchema = z
  .string()
  .regex(/^\d{1,12}(\.\d{1,9})?s$/, 'a duration such as "60s"')
  .transform((s) => Math.round(Number(s.slice(0, -1)) * 1000));

/**
 * google.monitoring.v3.ComparisonType in number order (REST clients may send the number; proto3
 * JSON allows both). Shared with the rehearsal's Monitoring stand-in.
 */
export const comparisons = [
  'COMPARISON_UNSPECIFIED',
  'COMPARISON_GT',
  'COMPARISON_GE',
  'COMPARISON_LT',
  'COMPARISON_LE',
  'COMPARISON_EQ',
  'COMPARISON_NE',
] as const;
const aligners: Record<number, string> = {
  0: 'ALIGN_NONE',
  10: 'ALIGN_MIN',
  11: 'ALIGN_MAX',
  12: 'ALIGN_MEAN',
  13: 'ALIGN_COUNT',
  14: 'ALIGN_SUM',
  2: 'ALIGN_RATE',
  1: 'ALIGN_DELTA',
};
const enumOf = (names: readonly string[], byNumber: Record<number, string>) =>
  z.union([z.string(), z.number().int()]).transform((v, ctx) => {
    const name = typeof v === 'number' ? byNumber[v] : v;
    if (name === undefined || !names.includes(name)) {
      ctx.addIssue({
        code: 'custom',
        message: `unsupported value ${String(v)}; supported: ${names.join(', ')}`,
      });
      return z.NEVER;
    }
    return name;
  });

const supportedAligners = ['ALIGN_MEAN', 'ALIGN_MAX', 'ALIGN_MIN', 'ALIGN_SUM', 'ALIGN_COUNT'] as const;
export type Aligner = (typeof supportedAligners)[number];
// Aggregation.Reducer of google.monitoring.v3 (common.proto), the ones the emulator evaluates.
const reducerNumbers: Record<number, string> = {
  0: 'REDUCE_NONE',
  1: 'REDUCE_MEAN',
  2: 'REDUCE_MIN',
  3: 'REDUCE_MAX',
  4: 'REDUCE_SUM',
  6: 'REDUCE_COUNT',
};
const supportedReducers = [
  'REDUCE_NONE',
  'REDUCE_MEAN',
  'REDUCE_MIN',
  'REDUCE_MAX',
  'REDUCE_SUM',
  'REDUCE_COUNT',
] as const;
export type Reducer = (typeof supportedReducers)[number];
/**
 * A `groupByFields` entry: `resource.type`, `metric.type`, `resource.label(s).K`,
 * `metric.label(s).K`, `metadata.user_labels.K` or `metadata.system_labels.K` (K may be quoted).
 */
export const groupByField =
  /^(resource\.type|metric\.type|(resource|metric)\.labels?\.([A-Za-z_][\w-]*|"[^"]+")|metadata\.(user|system)_labels\.([A-Za-z_][\w-]*|"[^"]+"))$/;
export type Comparison = Exclude<(typeof comparisons)[number], 'COMPARISON_UNSPECIFIED'>;

const severities = ['SEVERITY_UNSPECIFIED', 'CRITICAL', 'ERROR', 'WARNING'];

const labelKey = /^[a-z][a-z0-9_-]{0,62}$/;
const userLabelsSchema = z
  .record(
    z.string().regex(labelKey, 'label keys: lower case, ≤ 63 characters'),
    z
      .string()
      .max(63)
      .regex(/^[a-z0-9_-]*$/, 'label values: lower case, digits, _ and -'),
  )
  .refine((l) => Object.keys(l).length <= 64, 'at most 64 labels');

/**
 * Aggregation (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#Aggregation):
 * "If crossSeriesReducer is specified, then perSeriesAligner must be specified and not equal
 * ALIGN_NONE and alignmentPeriod must be specified; otherwise, an error is returned."
 */
const aggregationSchema = z
  .object({
    alignmentPeriod: durationSchema.optional(),
    perSeriesAligner: enumOf(supportedAligners, aligners).optional(),
    crossSeriesReducer: enumOf(supportedReducers, reducerNumbers).optional(),
    groupByFields: z
      .array(z.string().regex(groupByField, 'a groupByFields entry such as "resource.label.zone"'))
      .max(16)
      .optional(),
  })
  .refine(
    (a) =>
      a.crossSeriesReducer === undefined ||
      a.crossSeriesReducer === 'REDUCE_NONE' ||
      (a.perSeriesAligner !== undefined && a.alignmentPeriod !== undefined),
    'crossSeriesReducer needs a perSeriesAligner other than ALIGN_NONE and an alignmentPeriod',
  );

const thresholdSchema = z.object({
  filter: z.string().min(1).max(2048),
  comparison: enumOf(comparisons.slice(1), Object.fromEntries(comparisons.map((c, i) => [i, c]))),
  thresholdValue: z.number().default(0),
  duration: durationSchema.refine((ms) => ms % 60_000 === 0, 'duration must be a multiple of 60s'),
  aggregations: z.array(aggregationSchema).max(1, 'one aggregation at most in the emulator').optional(),
  trigger: z.object({ count: z.number().int().min(1).max(1).optional() }).optional(),
  evaluationMissingData: z.string().optional(),
});

/** Google's longest absence through the API: 24.5 hours (the metric-absence alerting page). */
export const maxAbsenceMs = 88_200_000;

/**
 * MetricAbsence (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#metricabsence):
 * "the minimum value of this field is 120 seconds", whole minutes.
 */
const absenceSchema = z.object({
  filter: z.string().min(1).max(2048),
  duration: durationSchema.refine(
    (ms) => ms >= 120_000 && ms % 60_000 === 0 && ms <= maxAbsenceMs,
    'duration must be whole minutes, from 120s to 88200s',
  ),
  aggregations: z.array(aggregationSchema).max(1, 'one aggregation at most in the emulator').optional(),
  trigger: z.object({ count: z.number().int().min(1).max(1).optional() }).optional(),
});

const conditionSchema = z
  .object({
    name: z.string().optional(),
    displayName: z.string().min(1).max(512),
    conditionThreshold: thresholdSchema.optional(),
    conditionAbsent: absenceSchema.optional(),
  })
  .refine(
    (c) => (c.conditionThreshold === undefined) !== (c.conditionAbsent === undefined),
    'a condition holds one of conditionThreshold, conditionAbsent (the ones the emulator evaluates)',
  );
export type Condition = z.infer<typeof conditionSchema>;

const channelRefSchema = z
  .string()
  .regex(/^projects\/[^/]+\/notificationChannels\/[^/]+$/, 'a notification channel name');

export const policySchema = z.object({
  name: z.string().optional(),
  displayName: z.string().min(1).max(512),
  documentation: z
    .object({
      content: z.string().max(10_240).optional(),
      mimeType: z.string().optional(),
      subject: z.string().max(10_240).optional(),
    })
    .optional(),
  userLabels: userLabelsSchema.optional(),
  conditions: z.array(conditionSchema).min(1).max(1, 'one condition per policy in the emulator'),
  combiner: z
    .enum(['OR', 'AND', 'AND_WITH_MATCHING_RESOURCE', 'COMBINE_UNSPECIFIED'])
    .or(z.number().int())
    .optional(),
  enabled: z.boolean().optional(),
  notificationChannels: z.array(channelRefSchema).max(16).optional(),
  alertStrategy: z
    .object({
      autoClose: durationSchema.refine((ms) => ms > 0, 'autoClose must be positive').optional(),
      // AlertStrategy.NotificationPrompt: which state changes are notified (both when unset).
      notificationPrompts: z
        .array(enumOf(['OPENED', 'CLOSED'], { 1: 'OPENED', 3: 'CLOSED' }))
        .refine((p) => p.includes('OPENED'), 'notificationPrompts: [OPENED] or [OPENED, CLOSED]')
        .optional(),
      notificationChannelStrategy: z
        .array(
          z.object({
            notificationChannelNames: z.array(channelRefSchema).min(1),
            renotifyInterval: durationSchema.optional(),
          }),
        )
        .optional(),
    })
    .optional(),
  // AlertPolicy.Severity; the REST clients send its number.
  severity: enumOf(severities, Object.fromEntries(severities.map((v, i) => [i, v]))).optional(),
});

export const channelSchema = z.object({
  name: z.string().optional(),
  type: z.literal('pubsub', { message: 'the emulator supports notification channels of type pubsub' }),
  displayName: z.string().max(512).optional(),
  description: z.string().max(1024).optional(),
  labels: z
    .object({
      topic: z
        .string()
        .regex(
          /^projects\/[a-z][-a-z0-9]{4,28}[a-z0-9]\/topics\/[A-Za-z][\w.~+%-]{2,254}$/,
          'labels.topic: projects/PROJECT/topics/TOPIC',
        ),
    })
    .strict(),
  userLabels: userLabelsSchema.optional(),
  enabled: z.boolean().optional(),
});

export type PolicyInput = z.infer<typeof policySchema>;
export type ChannelInput = z.infer<typeof channelSchema>;

export interface Policy {
  id: string;
  name: string;
  /** The body as sent, for updates with a field mask. */
  raw: Record<string, unknown>;
  input: PolicyInput;
  conditionName: string;
  created: string;
  updated?: string;
}
export interface Channel {
  name: string;
  input: ChannelInput;
  created: string;
}

export interface Incident {
  id: string;
  policy: string;
  seriesKey: string;
  metric: { type: string; labels: Record<string, string> };
  resource: { type: string; labels: Record<string, string> };
  /** The resource's metadata labels Monitoring reports with it (a VM's labels are `user_labels`). */
  metadata: ResourceMetadata;
  startedAt: number;
  endedAt?: number;
  state: 'open' | 'closed';
  observed: number;
  lastNotifiedAt: number;
  lastDataAt: number;
  /** Why it closed: the condition cleared, no data for autoClose, or its condition was deleted or changed. */
  closeReason?: 'cleared' | 'auto-close' | 'cancelled';
}

export interface ResourceMetadata {
  user_labels: Record<string, string>;
  system_labels: Record<string, string>;
}

export const ms = (t: number) => new Date(t).toISOString();
export const seconds = (msValue: number) => `${msValue / 1000}s`;
export const randomId = () =>
  BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString()
    .slice(0, 19);

export function parse<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(body);
  if (!r.success)
    throw invalid(
      `Invalid ${what}: ${r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
    );
  return r.data;
}
