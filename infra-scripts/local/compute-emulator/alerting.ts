import { alignedSeries, isViolated, type MetadataOf, type SeriesSource } from './alerting-conditions';
import { type Fault, IncidentLog } from './alerting-incidents';
import { AlertResources } from './alerting-resources';
import { maxAbsenceMs, type Condition, type Policy } from './alerting-schemas';

type Threshold = NonNullable<Condition['conditionThreshold']>;
type Absence = NonNullable<Condition['conditionAbsent']>;

export { align, normalizeFilter, reduce, violates } from './alerting-conditions';
export type { SeriesData, SeriesSource } from './alerting-conditions';
export type { Incident } from './alerting-schemas';

/**
 * Cloud Monitoring alerting, the subset the sandbox uses: `projects.notificationChannels` (type
 * `pubsub`, label `topic`) and `projects.alertPolicies` with `conditionThreshold` or
 * `conditionAbsent` conditions, plus an evaluator that reads the emulator's time series, opens and
 * closes incidents and publishes schema-1.2 notifications to the channels' topics, as Monitoring does (field names from
 * google.monitoring.v3 AlertPolicy / NotificationChannel, REST JSON:
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies and
 * https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.notificationChannels).
 *
 * Evaluation: each round aligns every matching time series (the points of the last
 * `alignmentPeriod` with `perSeriesAligner`), reduces them across series by `groupByFields` with a
 * `crossSeriesReducer` when there is one, and compares each resulting series with `thresholdValue`.
 * A series that violates for `duration` opens an incident; one whose value no longer violates
 * closes it; open incidents are notified again every `renotifyInterval` of their channels'
 * strategy and closed when the series has had no data for `alertStrategy.autoClose` (default 7
 * days), as Monitoring documents it. An absence condition opens one incident per series silent for
 * its `duration` (`evaluateAbsence`). A condition deleted or changed while incidents are open
 * cancels them ("Incident cancelled because …", the closed notification Monitoring sends).
 *
 * The parts: `alerting-schemas` (request bodies), `alerting-resources` (channels and policies),
 * `alerting-conditions` (the threshold evaluator), `alerting-incidents` (incident lifecycle and
 * deliveries) and `alerting-notification` (the notification body).
 */

export interface AlertingOptions {
  project: string;
  projectNumber: string;
  /** The time series conditions read: the emulator's store, or one that adds Google's own metrics. */
  store: SeriesSource;
  /** Monitoring's metadata of a monitored resource, for `metadata.user_labels.K` filters and groups. */
  resourceMetadata?: MetadataOf;
  /** Publishes to a full topic name (`projects/P/topics/T`), as Monitoring's service agent does. */
  publish: (topic: string, data: Buffer) => Promise<unknown>;
  clock?: () => number;
  /** The display name of a monitored resource (a VM's name), when the emulator knows it. */
  resourceName?: (resource: { type: string; labels: Record<string, string> }) => string | undefined;
  onError?: (err: unknown) => void;
}

const defaultAutoCloseMs = 7 * 24 * 3600_000;

export class Alerting {
  private readonly resources: AlertResources;
  private readonly incidentLog: IncidentLog;
  /** policy id → series key → when it started violating. */
  private readonly violating = new Map<string, Map<string, number>>();
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: AlertingOptions) {
    this.clock = o.clock ?? Date.now;
    this.resources = new AlertResources({
      ...o,
      clock: this.clock,
      onConditionChanged: (id) => this.violating.delete(id),
    });
    this.incidentLog = new IncidentLog({
      ...o,
      clock: this.clock,
      channel: (name) => this.resources.channelNamed(name),
    });
  }

  // ---- REST: notificationChannels and alertPolicies ----

  createChannel(project: string, body: unknown) {
    return this.resources.createChannel(project, body);
  }

  listChannels(project: string) {
    return this.resources.listChannels(project);
  }

  getChannel(project: string, id: string) {
    return this.resources.getChannel(project, id);
  }

  deleteChannel(project: string, id: string, force: boolean) {
    return this.resources.deleteChannel(project, id, force);
  }

  createPolicy(project: string, body: unknown) {
    return this.resources.createPolicy(project, body);
  }

  /** A changed condition cancels the policy's open incidents, notifying the channels. */
  async updatePolicy(project: string, id: string, body: unknown, updateMask: string | undefined) {
    const { view, policy, conditionChanged } = this.resources.updatePolicy(project, id, body, updateMask);
    if (conditionChanged)
      for (const i of this.incidentLog.openOf(policy.name))
        await this.incidentLog.close(policy, i, 'cancelled');
    return view;
  }

  listPolicies(project: string) {
    return this.resources.listPolicies(project);
  }

  getPolicy(project: string, id: string) {
    return this.resources.getPolicy(project, id);
  }

  /** Deleting a policy cancels its open incidents, notifying the channels. */
  async deletePolicy(project: string, id: string) {
    const p = this.resources.removePolicy(project, id);
    this.violating.delete(id);
    for (const i of this.incidentLog.openOf(p.name)) await this.incidentLog.close(p, i, 'cancelled');
    return {};
  }

  // ---- emulator controls ----

  /** Drops the next `count` notifications of that state (the channel "loses" them). */
  dropNotifications(state: Fault['state'], count = 1): void {
    this.incidentLog.drop(state, count);
  }

  /** Ends the fault switch: the channels deliver again. */
  clearFaults(): void {
    this.incidentLog.clearFaults();
  }

  incidents() {
    return this.incidentLog.all();
  }

  deliveries() {
    return this.incidentLog.deliveries();
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
    for (const p of [...this.resources.policies.values()]) {
      if (p.input.enabled !== false) await this.evaluatePolicy(p, now);
    }
  }

  private async evaluatePolicy(p: Policy, now: number): Promise<void> {
    const cond = p.input.conditions[0]!;
    if (cond.conditionAbsent) await this.evaluateAbsence(p, cond.conditionAbsent, now);
    else await this.evaluateThreshold(p, cond.conditionThreshold!, now);
    const autoClose = p.input.alertStrategy?.autoClose ?? defaultAutoCloseMs;
    for (const i of this.incidentLog.openOf(p.name)) {
      if (now - i.lastDataAt >= autoClose) await this.incidentLog.close(p, i, 'auto-close');
      else await this.incidentLog.renotify(p, i, now);
    }
  }

  private async evaluateThreshold(p: Policy, c: Threshold, now: number): Promise<void> {
    const { keys, aligned } = alignedSeries(this.o.store, c, now, this.o.resourceMetadata);
    const since = this.violating.get(p.id) ?? new Map<string, number>();
    this.violating.set(p.id, since);
    for (const s of aligned) {
      const open = this.incidentLog.openOf(p.name).find((i) => i.seriesKey === s.key);
      if (open) {
        open.lastDataAt = s.newest;
        open.observed = s.value;
      }
      if (isViolated(c, s.value)) {
        const start = since.get(s.key) ?? now;
        since.set(s.key, start);
        if (!open && now - start >= c.duration) await this.incidentLog.open(p, s, now);
      } else {
        since.delete(s.key);
        if (open) await this.incidentLog.close(p, open, 'cleared');
      }
    }
    for (const key of [...since.keys()]) if (!keys.has(key)) since.delete(key);
  }

  /**
   * Metric absence, per time series: one that had a point in the last 24.5 hours (the longest
   * absence Monitoring takes) and none for `duration` opens an incident; its next point closes it.
   * A series never seen cannot go absent. An absence already reported (its incident auto-closed or
   * cancelled) opens again only after new data: https://cloud.google.com/monitoring/alerts/metric-absence
   */
  private async evaluateAbsence(p: Policy, c: Absence, now: number): Promise<void> {
    const { aligned } = alignedSeries(this.o.store, c, now, this.o.resourceMetadata, maxAbsenceMs);
    const incidents = this.incidentLog.all().filter((i) => i.policy === p.name);
    for (const s of aligned) {
      const mine = incidents.filter((i) => i.seriesKey === s.key);
      const open = mine.find((i) => i.state === 'open');
      const absent = now - s.newest >= c.duration;
      if (open && !absent) {
        open.lastDataAt = s.newest;
        open.observed = s.value;
        await this.incidentLog.close(p, open, 'cleared');
      } else if (!open && absent && !mine.some((i) => i.lastDataAt >= s.newest))
        await this.incidentLog.open(p, s, now);
    }
  }
}
