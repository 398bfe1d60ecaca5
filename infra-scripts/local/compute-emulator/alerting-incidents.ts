import { randomBytes } from 'node:crypto';
import type { AlignedSeries } from './alerting-conditions';
import { notification, type NotificationContext } from './alerting-notification';
import { type Channel, type Incident, ms, type Policy } from './alerting-schemas';

export type Fault = { state: 'open' | 'closed' | 'any'; remaining: number };

export interface IncidentOptions extends NotificationContext {
  /** Publishes to a full topic name (`projects/P/topics/T`), as Monitoring's service agent does. */
  publish: (topic: string, data: Buffer) => Promise<unknown>;
  channel: (name: string) => Channel | undefined;
  clock: () => number;
}

/**
 * The incident lifecycle: open, close (cleared, auto-closed or cancelled), renotify every
 * `renotifyInterval` of the channels' strategy, and the deliveries to the channels' topics, with
 * the emulator's fault switch that makes channels lose notifications.
 */
export class IncidentLog {
  private readonly byId = new Map<string, Incident>();
  private readonly faults: Fault[] = [];
  private readonly log: { at: string; incidentId: string; state: string; topic: string; dropped: boolean }[] =
    [];

  constructor(private readonly o: IncidentOptions) {}

  all(): Incident[] {
    return [...this.byId.values()];
  }

  deliveries() {
    return [...this.log];
  }

  /** Drops the next `count` notifications of that state (the channel "loses" them). */
  drop(state: Fault['state'], count: number): void {
    this.faults.push({ state, remaining: count });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  openOf(policy: string): Incident[] {
    return [...this.byId.values()].filter((i) => i.policy === policy && i.state === 'open');
  }

  async open(p: Policy, s: AlignedSeries, now: number) {
    const incident: Incident = {
      id: `0.${randomBytes(8).toString('hex').slice(0, 12)}`,
      policy: p.name,
      seriesKey: s.key,
      metric: s.metric,
      resource: s.resource,
      metadata: s.metadata,
      startedAt: now,
      state: 'open',
      observed: s.value,
      lastNotifiedAt: now,
      lastDataAt: s.newest,
    };
    this.byId.set(incident.id, incident);
    await this.notify(p, incident, p.input.notificationChannels ?? []);
  }

  async close(p: Policy, i: Incident, reason: NonNullable<Incident['closeReason']>) {
    i.state = 'closed';
    i.endedAt = this.o.clock();
    i.closeReason = reason;
    await this.notify(p, i, p.input.notificationChannels ?? []);
  }

  async renotify(p: Policy, i: Incident, now: number) {
    const due = (p.input.alertStrategy?.notificationChannelStrategy ?? [])
      .filter((s) => s.renotifyInterval !== undefined && now - i.lastNotifiedAt >= s.renotifyInterval)
      .flatMap((s) => s.notificationChannelNames);
    if (!due.length) return;
    i.lastNotifiedAt = now;
    await this.notify(p, i, [...new Set(due)]);
  }

  private async notify(p: Policy, i: Incident, channels: string[]) {
    const prompts = p.input.alertStrategy?.notificationPrompts ?? ['OPENED', 'CLOSED'];
    if (!prompts.includes(i.state === 'open' ? 'OPENED' : 'CLOSED')) return;
    const data = Buffer.from(JSON.stringify(notification(p, i, this.o)));
    for (const name of channels) {
      const ch = this.o.channel(name);
      if (!ch || ch.input.enabled === false) continue;
      const fault = this.faults.find((f) => f.remaining > 0 && (f.state === 'any' || f.state === i.state));
      if (fault) fault.remaining--;
      this.log.push({
        at: ms(this.o.clock()),
        incidentId: i.id,
        state: i.state,
        topic: ch.input.labels.topic,
        dropped: !!fault,
      });
      if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
      if (!fault) await this.o.publish(ch.input.labels.topic, data);
    }
    if (i.state === 'open') i.lastNotifiedAt = this.o.clock();
  }
}
