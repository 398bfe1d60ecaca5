import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { MonitoringError, type TimeSeriesStore } from './monitoring';

/**
 * Cloud Monitoring alerting, the subset the sandbox uses: `projects.notificationChannels` (type
 * `pubsub`, label `topic`) and `projects.alertPolicies` with `conditionThreshold` conditions, plus
 * an evaluator that reads the emulator's time series, opens and closes incidents and publishes
 * schema-1.2 notifications to the channels' topics, as Monitoring does (field names from
 * google.monitoring.v3 AlertPolicy / NotificationChannel, REST JSON:
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies and
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.notificationChannels).
 *
 * Evaluation per matching time series: each round aligns the points of the last `alignmentPeriod`
 * with `perSeriesAligner` (ALIGN_MEAN, _MAX, _MIN, _SUM, _COUNT; cross-series reducers are not
 * emulated) and compares with `thresholdValue`. A series that violates for `duration` opens an
 * incident; one whose aligned value no longer violates closes it; open incidents are notified again
 * every `renotifyInterval` of their channels' strategy and closed when the series has had no data
 * for `alertStrategy.autoClose` (default 7 days), as Monitoring documents it.
 */

const notFound = (what: string) =>
  new MonitoringError(404, 'NOT_FOUND', `Requested entity was not found: ${what}`);
const invalid = (message: string) => new MonitoringError(400, 'INVALID_ARGUMENT', message);

/** google.protobuf.Duration in JSON: `"60s"`, `"1.5s"`. */
const durationSchema = z
  .string()
  .regex(/^\d{1,12}(\.\d{1,9})?s$/, 'a duration such as "60s"')
  .transform((s) => Math.round(Number(s.slice(0, -1)) * 1000));

// REST clients may send enum numbers (proto3 JSON allows both); numbers from google.monitoring.v3.
const comparisons = [
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
type Aligner = (typeof supportedAligners)[number];
type Comparison = Exclude<(typeof comparisons)[number], 'COMPARISON_UNSPECIFIED'>;

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

const aggregationSchema = z.object({
  alignmentPeriod: durationSchema.optional(),
  perSeriesAligner: enumOf(supportedAligners, aligners).optional(),
  crossSeriesReducer: z.union([z.literal('REDUCE_NONE'), z.literal(0)]).optional(),
  groupByFields: z.array(z.string()).max(0, 'groupByFields is not emulated').optional(),
});

const thresholdSchema = z.object({
  filter: z.string().min(1).max(2048),
  comparison: enumOf(comparisons.slice(1), Object.fromEntries(comparisons.map((c, i) => [i, c]))),
  thresholdValue: z.number().default(0),
  duration: durationSchema.refine((ms) => ms % 60_000 === 0, 'duration must be a multiple of 60s'),
  aggregations: z.array(aggregationSchema).max(1, 'one aggregation at most in the emulator').optional(),
  trigger: z.object({ count: z.number().int().min(1).max(1).optional() }).optional(),
  evaluationMissingData: z.string().optional(),
});

const conditionSchema = z.object({
  name: z.string().optional(),
  displayName: z.string().min(1).max(512),
  conditionThreshold: thresholdSchema,
});

const channelRefSchema = z
  .string()
  .regex(/^projects\/[^/]+\/notificationChannels\/[^/]+$/, 'a notification channel name');

const policySchema = z.object({
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
  severity: z.enum(['SEVERITY_UNSPECIFIED', 'CRITICAL', 'ERROR', 'WARNING']).optional(),
});

const channelSchema = z.object({
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

type PolicyInput = z.infer<typeof policySchema>;
type ChannelInput = z.infer<typeof channelSchema>;

interface Policy {
  id: string;
  name: string;
  /** The body as sent, for updates with a field mask. */
  raw: Record<string, unknown>;
  input: PolicyInput;
  conditionName: string;
  created: string;
  updated?: string;
}
interface Channel {
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
  startedAt: number;
  endedAt?: number;
  state: 'open' | 'closed';
  observed: number;
  lastNotifiedAt: number;
  lastDataAt: number;
  /** Why it closed: the condition cleared, no data for autoClose, or the policy went away. */
  closeReason?: 'cleared' | 'auto-close' | 'policy-deleted';
}

export interface AlertingOptions {
  project: string;
  projectNumber: string;
  store: TimeSeriesStore;
  /** Publishes to a full topic name (`projects/P/topics/T`), as Monitoring's service agent does. */
  publish: (topic: string, data: Buffer) => Promise<unknown>;
  clock?: () => number;
  /** The display name of a monitored resource (a VM's name), when the emulator knows it. */
  resourceName?: (resource: { type: string; labels: Record<string, string> }) => string | undefined;
  onError?: (err: unknown) => void;
}

type Fault = { state: 'open' | 'closed' | 'any'; remaining: number };

const ms = (t: number) => new Date(t).toISOString();
const randomId = () =>
  BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString()
    .slice(0, 19);

/** Filter terms `field = "value"`, joined by whitespace or AND, as alert conditions write them. */
export function normalizeFilter(filter: string): string {
  const term = /([a-z_]+(?:\.[A-Za-z_][\w-]*)+)\s*=\s*"([^"]*)"/g;
  const terms = [...filter.matchAll(term)].map((m) => `${m[1]}="${m[2]}"`);
  const rest = filter
    .replace(term, ' ')
    .replace(/\bAND\b/g, ' ')
    .trim();
  if (rest || !terms.length) throw invalid(`Unsupported filter: ${filter}`);
  if (!terms.some((t) => t.startsWith('metric.type=')))
    throw invalid('The filter of a metric threshold condition must name a metric.type.');
  return terms.join(' AND ');
}

export function align(values: number[], aligner: Aligner): number | undefined {
  if (!values.length) return aligner === 'ALIGN_COUNT' ? 0 : undefined;
  switch (aligner) {
    case 'ALIGN_MEAN':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'ALIGN_SUM':
      return values.reduce((a, b) => a + b, 0);
    case 'ALIGN_MAX':
      return Math.max(...values);
    case 'ALIGN_MIN':
      return Math.min(...values);
    case 'ALIGN_COUNT':
      return values.length;
  }
}

export function violates(value: number, comparison: Comparison, threshold: number): boolean {
  switch (comparison) {
    case 'COMPARISON_GT':
      return value > threshold;
    case 'COMPARISON_GE':
      return value >= threshold;
    case 'COMPARISON_LT':
      return value < threshold;
    case 'COMPARISON_LE':
      return value <= threshold;
    case 'COMPARISON_EQ':
      return value === threshold;
    case 'COMPARISON_NE':
      return value !== threshold;
  }
}

const defaultAutoCloseMs = 7 * 24 * 3600_000;

export class Alerting {
  private readonly policies = new Map<string, Policy>();
  private readonly channels = new Map<string, Channel>();
  private readonly incidentsById = new Map<string, Incident>();
  /** policy id → series key → when it started violating. */
  private readonly violating = new Map<string, Map<string, number>>();
  private readonly faults: Fault[] = [];
  private readonly clock: () => number;
  private readonly log: { at: string; incidentId: string; state: string; topic: string; dropped: boolean }[] =
    [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: AlertingOptions) {
    this.clock = o.clock ?? Date.now;
  }

  // ---- notificationChannels ----

  createChannel(project: string, body: unknown) {
    this.checkProject(project);
    const input = parse(channelSchema, body, 'NotificationChannel');
    const name = `projects/${this.o.project}/notificationChannels/${randomId()}`;
    this.channels.set(name, { name, input, created: ms(this.clock()) });
    return this.channelView(this.channels.get(name)!);
  }

  listChannels(project: string) {
    this.checkProject(project);
    return {
      notificationChannels: [...this.channels.values()].map((c) => this.channelView(c)),
      totalSize: this.channels.size,
    };
  }

  getChannel(project: string, id: string) {
    return this.channelView(this.channel(project, id));
  }

  deleteChannel(project: string, id: string, force: boolean) {
    const c = this.channel(project, id);
    const users = [...this.policies.values()].filter((p) => p.input.notificationChannels?.includes(c.name));
    if (users.length && !force)
      throw new MonitoringError(
        400,
        'FAILED_PRECONDITION',
        `Notification channel ${c.name} is referenced by alert policies; set force to delete it.`,
      );
    this.channels.delete(c.name);
    return {};
  }

  // ---- alertPolicies ----

  createPolicy(project: string, body: unknown) {
    this.checkProject(project);
    const input = this.validPolicy(body);
    const id = randomId();
    const name = `projects/${this.o.project}/alertPolicies/${id}`;
    const policy: Policy = {
      id,
      name,
      raw: body as Record<string, unknown>,
      input,
      conditionName: `${name}/conditions/${randomId()}`,
      created: ms(this.clock()),
    };
    this.policies.set(id, policy);
    return this.policyView(policy);
  }

  /**
   * `alertPolicies.patch`: the fields the `updateMask` names (top-level ones here), or the whole
   * policy without a mask. A changed condition restarts its evaluation, as a new condition would.
   */
  updatePolicy(project: string, id: string, body: unknown, updateMask: string | undefined) {
    const p = this.policy(project, id);
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw invalid('Invalid AlertPolicy.');
    const fields = updateMask
      ?.split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    const raw: Record<string, unknown> = { ...p.raw };
    if (fields) {
      for (const f of fields) {
        if (!/^[a-zA-Z]+$/.test(f) || f === 'name' || !(f in policySchema.shape))
          throw invalid(`Unsupported field in update_mask: ${f}`);
        if (f in body) raw[f] = (body as Record<string, unknown>)[f];
        else delete raw[f];
      }
    } else {
      Object.assign(raw, body);
    }
    const input = this.validPolicy(raw);
    if (
      JSON.stringify(input.conditions) !== JSON.stringify(p.input.conditions) ||
      input.enabled !== p.input.enabled
    )
      this.violating.delete(p.id);
    Object.assign(p, { raw, input, updated: ms(this.clock()) });
    return this.policyView(p);
  }

  private validPolicy(body: unknown): PolicyInput {
    const input = parse(policySchema, body, 'AlertPolicy');
    normalizeFilter(input.conditions[0]!.conditionThreshold.filter);
    const refs = [
      ...(input.notificationChannels ?? []),
      ...(input.alertStrategy?.notificationChannelStrategy ?? []).flatMap((s) => s.notificationChannelNames),
    ];
    for (const ref of refs)
      if (!this.channels.has(ref)) throw invalid(`Notification channel ${ref} does not exist.`);
    for (const s of input.alertStrategy?.notificationChannelStrategy ?? [])
      for (const ref of s.notificationChannelNames)
        if (!input.notificationChannels?.includes(ref))
          throw invalid(
            `notificationChannelStrategy names ${ref}, which is not among the policy's notificationChannels.`,
          );
    return input;
  }

  listPolicies(project: string) {
    this.checkProject(project);
    return {
      alertPolicies: [...this.policies.values()].map((p) => this.policyView(p)),
      totalSize: this.policies.size,
    };
  }

  getPolicy(project: string, id: string) {
    return this.policyView(this.policy(project, id));
  }

  /** Deleting a policy closes its open incidents ("Incident cancelled"), notifying the channels. */
  async deletePolicy(project: string, id: string) {
    const p = this.policy(project, id);
    this.policies.delete(id);
    this.violating.delete(id);
    for (const i of this.openIncidents(p.name)) await this.close(p, i, 'policy-deleted');
    return {};
  }

  // ---- emulator controls ----

  /** Drops the next `count` notifications of that state (the channel "loses" them). */
  dropNotifications(state: Fault['state'], count = 1): void {
    this.faults.push({ state, remaining: count });
  }

  /** Ends the fault switch: the channels deliver again. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  incidents(): Incident[] {
    return [...this.incidentsById.values()];
  }

  deliveries() {
    return [...this.log];
  }

  start(intervalMs: number): void {
    this.timer ??= setInterval(() => void this.evaluate(), intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One evaluation round of every enabled policy; rounds never overlap. */
  evaluate(): Promise<void> {
    this.running ??= this.round()
      .catch((err: unknown) => this.o.onError?.(err))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async round(): Promise<void> {
    const now = this.clock();
    for (const p of [...this.policies.values()]) {
      if (p.input.enabled === false) continue;
      const c = p.input.conditions[0]!.conditionThreshold;
      const agg = c.aggregations?.[0];
      const periodMs = agg?.alignmentPeriod ?? 60_000;
      const aligner = (agg?.perSeriesAligner ?? 'ALIGN_MEAN') as Aligner;
      const { timeSeries } = this.o.store.list({
        filter: normalizeFilter(c.filter),
        startTime: ms(now - periodMs + 1),
        endTime: ms(now),
      });
      const since = this.violating.get(p.id) ?? new Map<string, number>();
      this.violating.set(p.id, since);
      const seen = new Set<string>();
      for (const ts of timeSeries) {
        const key = JSON.stringify([ts.metric, ts.resource]);
        seen.add(key);
        const values = ts.points
          .map((pt) => pt.value.doubleValue ?? Number(pt.value.int64Value ?? NaN))
          .filter(Number.isFinite);
        const value = align(values, aligner);
        if (value === undefined) continue;
        const open = this.openIncidents(p.name).find((i) => i.seriesKey === key);
        // "No data for autoClose" counts from the newest point, not from this round.
        const newest = Math.max(...ts.points.map((pt) => Date.parse(pt.interval.endTime)));
        if (open) {
          open.lastDataAt = newest;
          open.observed = value;
        }
        if (violates(value, c.comparison as Comparison, c.thresholdValue)) {
          const start = since.get(key) ?? now;
          since.set(key, start);
          if (!open && now - start >= c.duration) await this.open(p, key, ts, value, now, newest);
        } else {
          since.delete(key);
          if (open) await this.close(p, open, 'cleared');
        }
      }
      for (const key of [...since.keys()]) if (!seen.has(key)) since.delete(key);
      const autoClose = p.input.alertStrategy?.autoClose ?? defaultAutoCloseMs;
      for (const i of this.openIncidents(p.name)) {
        if (now - i.lastDataAt >= autoClose) await this.close(p, i, 'auto-close');
        else await this.renotify(p, i, now);
      }
    }
  }

  private openIncidents(policy: string): Incident[] {
    return [...this.incidentsById.values()].filter((i) => i.policy === policy && i.state === 'open');
  }

  private async open(
    p: Policy,
    key: string,
    ts: { metric: Incident['metric']; resource: Incident['resource'] },
    value: number,
    now: number,
    newest: number,
  ) {
    const incident: Incident = {
      id: `0.${randomBytes(8).toString('hex').slice(0, 12)}`,
      policy: p.name,
      seriesKey: key,
      metric: ts.metric,
      resource: ts.resource,
      startedAt: now,
      state: 'open',
      observed: value,
      lastNotifiedAt: now,
      lastDataAt: newest,
    };
    this.incidentsById.set(incident.id, incident);
    await this.notify(p, incident, p.input.notificationChannels ?? []);
  }

  private async close(p: Policy, i: Incident, reason: NonNullable<Incident['closeReason']>) {
    i.state = 'closed';
    i.endedAt = this.clock();
    i.closeReason = reason;
    await this.notify(p, i, p.input.notificationChannels ?? []);
  }

  private async renotify(p: Policy, i: Incident, now: number) {
    const due = (p.input.alertStrategy?.notificationChannelStrategy ?? [])
      .filter((s) => s.renotifyInterval !== undefined && now - i.lastNotifiedAt >= s.renotifyInterval)
      .flatMap((s) => s.notificationChannelNames);
    if (!due.length) return;
    i.lastNotifiedAt = now;
    await this.notify(p, i, [...new Set(due)]);
  }

  private async notify(p: Policy, i: Incident, channels: string[]) {
    const data = Buffer.from(JSON.stringify(this.notification(p, i)));
    for (const name of channels) {
      const ch = this.channels.get(name);
      if (!ch || ch.input.enabled === false) continue;
      const fault = this.faults.find((f) => f.remaining > 0 && (f.state === 'any' || f.state === i.state));
      if (fault) fault.remaining--;
      this.log.push({
        at: ms(this.clock()),
        incidentId: i.id,
        state: i.state,
        topic: ch.input.labels.topic,
        dropped: !!fault,
      });
      if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
      if (!fault) await this.o.publish(ch.input.labels.topic, data);
    }
    if (i.state === 'open') i.lastNotifiedAt = this.clock();
  }

  /** The notification as Monitoring's Pub/Sub channel sends it (schema version 1.2). */
  notification(p: Policy, i: Incident) {
    const cond = p.input.conditions[0]!;
    const c = cond.conditionThreshold;
    const project = this.o.project;
    const vm = this.o.resourceName?.(i.resource);
    const metricName = i.metric.type.split('/').slice(-2).join('/');
    const value = i.observed.toFixed(3);
    const threshold = c.thresholdValue.toFixed(3);
    const resourceName = vm ? `${project} ${vm}` : (i.resource.labels.instance_id ?? i.resource.type);
    const summary =
      i.state === 'open'
        ? `${metricName} for ${resourceName} with metric labels ${JSON.stringify(i.metric.labels)} is ${comparisonWords(c.comparison as Comparison)} the threshold of ${threshold} with a value of ${value}.`
        : i.closeReason === 'policy-deleted'
          ? `Incident cancelled because the alert policy was deleted or changed.`
          : i.closeReason === 'auto-close'
            ? `${metricName} for ${resourceName} has had no data for the auto-close duration; the incident was closed.`
            : `${metricName} for ${resourceName} returned to normal with a value of ${value}.`;
    return {
      incident: {
        incident_id: i.id,
        scoping_project_id: project,
        scoping_project_number: Number(this.o.projectNumber),
        url: `https://console.cloud.google.com/monitoring/alerting/incidents/${i.id}?project=${project}`,
        started_at: Math.floor(i.startedAt / 1000),
        ended_at: i.endedAt === undefined ? null : Math.floor(i.endedAt / 1000),
        state: i.state,
        summary,
        observed_value: value,
        threshold_value: String(c.thresholdValue),
        resource: i.resource,
        resource_type_display_name: i.resource.type === 'gce_instance' ? 'VM Instance' : i.resource.type,
        resource_id: i.resource.labels.instance_id ?? '',
        resource_display_name: vm ?? i.resource.labels.instance_id ?? '',
        resource_name: resourceName,
        metric: { type: i.metric.type, displayName: metricName, labels: i.metric.labels },
        metadata: { system_labels: {}, user_labels: {} },
        policy_name: p.input.displayName,
        policy_user_labels: p.input.userLabels ?? {},
        documentation: {
          content: p.input.documentation?.content ?? '',
          mime_type: p.input.documentation?.mimeType ?? 'text/markdown',
          subject: p.input.documentation?.subject ?? '',
        },
        condition: {
          name: p.conditionName,
          displayName: cond.displayName,
          conditionThreshold: this.policyView(p).conditions[0]!.conditionThreshold,
        },
        condition_name: cond.displayName,
        severity:
          p.input.severity && p.input.severity !== 'SEVERITY_UNSPECIFIED'
            ? p.input.severity.toLowerCase()
            : 'no severity',
      },
      version: '1.2',
    };
  }

  // ---- views and lookups ----

  private policyView(p: Policy) {
    const cond = p.input.conditions[0]!;
    const c = cond.conditionThreshold;
    const agg = c.aggregations?.[0];
    const strategy = p.input.alertStrategy;
    return {
      name: p.name,
      displayName: p.input.displayName,
      ...(p.input.documentation ? { documentation: p.input.documentation } : {}),
      userLabels: p.input.userLabels ?? {},
      conditions: [
        {
          name: p.conditionName,
          displayName: cond.displayName,
          conditionThreshold: {
            filter: c.filter,
            comparison: c.comparison,
            thresholdValue: c.thresholdValue,
            duration: seconds(c.duration),
            ...(agg
              ? {
                  aggregations: [
                    {
                      alignmentPeriod: seconds(agg.alignmentPeriod ?? 60_000),
                      perSeriesAligner: agg.perSeriesAligner ?? 'ALIGN_MEAN',
                    },
                  ],
                }
              : {}),
            trigger: { count: 1 },
          },
        },
      ],
      combiner: typeof p.input.combiner === 'string' ? p.input.combiner : 'OR',
      enabled: p.input.enabled ?? true,
      notificationChannels: p.input.notificationChannels ?? [],
      ...(strategy
        ? {
            alertStrategy: {
              ...(strategy.autoClose !== undefined ? { autoClose: seconds(strategy.autoClose) } : {}),
              ...(strategy.notificationChannelStrategy
                ? {
                    notificationChannelStrategy: strategy.notificationChannelStrategy.map((s) => ({
                      notificationChannelNames: s.notificationChannelNames,
                      ...(s.renotifyInterval !== undefined
                        ? { renotifyInterval: seconds(s.renotifyInterval) }
                        : {}),
                    })),
                  }
                : {}),
            },
          }
        : {}),
      ...(p.input.severity ? { severity: p.input.severity } : {}),
      creationRecord: { mutateTime: p.created, mutatedBy: 'emulator' },
      mutationRecord: { mutateTime: p.updated ?? p.created, mutatedBy: 'emulator' },
    };
  }

  private channelView(c: Channel) {
    return {
      name: c.name,
      type: c.input.type,
      displayName: c.input.displayName ?? '',
      description: c.input.description ?? '',
      labels: c.input.labels,
      userLabels: c.input.userLabels ?? {},
      enabled: c.input.enabled ?? true,
      creationRecord: { mutateTime: c.created },
    };
  }

  private checkProject(project: string) {
    if (project !== this.o.project && project !== this.o.projectNumber)
      throw new MonitoringError(
        403,
        'PERMISSION_DENIED',
        `Permission denied on project ${project} (or it may not exist).`,
      );
  }

  private policy(project: string, id: string): Policy {
    this.checkProject(project);
    const p = this.policies.get(id);
    if (!p) throw notFound(`projects/${project}/alertPolicies/${id}`);
    return p;
  }

  private channel(project: string, id: string): Channel {
    this.checkProject(project);
    const c = this.channels.get(`projects/${this.o.project}/notificationChannels/${id}`);
    if (!c) throw notFound(`projects/${project}/notificationChannels/${id}`);
    return c;
  }
}

function comparisonWords(c: Comparison): string {
  return {
    COMPARISON_GT: 'above',
    COMPARISON_GE: 'at or above',
    COMPARISON_LT: 'below',
    COMPARISON_LE: 'at or below',
    COMPARISON_EQ: 'equal to',
    COMPARISON_NE: 'not equal to',
  }[c];
}

const seconds = (msValue: number) => `${msValue / 1000}s`;

function parse<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(body);
  if (!r.success)
    throw invalid(
      `Invalid ${what}: ${r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
    );
  return r.data;
}
