/**
 * The emulator's metric-absence conditions, with the deploy's own heartbeat alert on healthSweep
 * (a `conditionAbsent` on `function_heartbeat{function="healthSweep"}`): while the function writes
 * its heartbeat nothing opens; once it stops for the condition's duration one incident opens, the
 * next point closes it, and a series that was never written never goes absent.
 */
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { heartbeatPolicy } from '../../infra-scripts/deploy/heartbeat';
import {
  Alerting,
  type SeriesData,
  type SeriesSource,
} from '../../infra-scripts/local/compute-emulator/alerting';
import { customMetric } from '../../shared/gcp/monitoring';

const project = 'demo-project';
const heartbeat = customMetric('function_heartbeat');
const T0 = Date.parse('2026-12-01T10:00:00Z');
type Notification = { incident: { state: string; summary: string; condition: Record<string, unknown> } };

function monitoring() {
  let now = T0;
  const points = new Map<string, number[]>();
  const sent: Notification[] = [];
  const series = (fn: string, from: number, to: number): SeriesData => ({
    metric: { type: heartbeat, labels: { function: fn } },
    resource: { type: 'global', labels: { project_id: project } },
    points: (points.get(fn) ?? [])
      .filter((t) => t >= from && t <= to)
      .map((t) => ({ interval: { endTime: new Date(t).toISOString() }, value: { int64Value: '1' } })),
  });
  // The heartbeat series of every function written to, with their points inside the asked window.
  const store: SeriesSource = {
    list: ({ startTime, endTime }) => ({
      timeSeries: [...points.keys()]
        .map((fn) => series(fn, Date.parse(startTime), Date.parse(endTime)))
        .filter((s) => s.points.length > 0),
    }),
  };
  const publish = async (_topic: string, data: Buffer) =>
    void sent.push(JSON.parse(data.toString('utf8')) as Notification);
  const alerting = new Alerting({ store, publish, project, projectNumber: '123456789012', clock: () => now });
  const channel = alerting.createChannel(project, {
    type: 'pubsub',
    labels: { topic: `projects/${project}/topics/operators` },
  }).name;
  const writing = new Set<string>();
  return {
    alerting,
    sent,
    channel,
    start: (fn: string) => writing.add(fn),
    stop: (fn: string) => writing.delete(fn),
    /** Advances the clock a minute at a time; each function written to writes its heartbeat. */
    async minutes(n: number) {
      for (let i = 0; i < n; i++) {
        now += 60_000;
        for (const fn of writing) points.set(fn, [...(points.get(fn) ?? []), now]);
        await alerting.evaluate();
      }
    },
  };
}

test("the deploy's heartbeat alert: accepted, opens when healthSweep stops writing for its duration, closes on its next point", async () => {
  const m = monitoring();
  const c = resolveConfig({ project });
  const body = { ...heartbeatPolicy(c), notificationChannels: [m.channel] };
  const absence = body.conditions[0]!.conditionAbsent;
  const minutes = Number(absence.duration.slice(0, -1)) / 60;
  expect(minutes).toBeGreaterThanOrEqual(2);
  const created = m.alerting.createPolicy(project, body);
  expect(created.conditions[0]).toMatchObject({ conditionAbsent: { duration: absence.duration } });

  // Written every minute: never absent. Another function's heartbeat is not this filter's.
  m.start('healthSweep');
  m.start('instanceEvents');
  await m.minutes(minutes + 5);
  expect(m.alerting.incidents()).toEqual([]);

  // Stopped: absent once its newest point is `duration` old, not a minute earlier.
  m.stop('healthSweep');
  await m.minutes(minutes - 1);
  expect(m.alerting.incidents()).toEqual([]);
  await m.minutes(1);
  expect(m.alerting.incidents()).toMatchObject([
    { state: 'open', metric: { type: heartbeat, labels: { function: 'healthSweep' } } },
  ]);
  expect(m.sent).toHaveLength(1);
  expect(m.sent[0]!.incident).toMatchObject({
    state: 'open',
    summary: expect.stringContaining(`no data for ${minutes} minutes`),
    condition: { conditionAbsent: { duration: absence.duration } },
  });
  // Still absent: one incident, not one per round.
  await m.minutes(3);
  expect(m.alerting.incidents()).toHaveLength(1);

  // Back: the next point closes it.
  m.start('healthSweep');
  await m.minutes(1);
  expect(m.alerting.incidents()).toMatchObject([{ state: 'closed', closeReason: 'cleared' }]);
  expect(m.sent.map((n) => n.incident.state)).toEqual(['open', 'closed']);
});

test('a series never written never goes absent; an absence reported and auto-closed opens again only after new data', async () => {
  const m = monitoring();
  const body = {
    displayName: 'stopped',
    combiner: 'OR',
    conditions: [
      {
        displayName: 'no heartbeat',
        conditionAbsent: {
          filter: `metric.type="${heartbeat}" metric.label."function"="x"`,
          duration: '120s',
        },
      },
    ],
    alertStrategy: { autoClose: '1800s' },
    notificationChannels: [m.channel],
  };
  m.alerting.createPolicy(project, body);
  await m.minutes(10);
  expect(m.alerting.incidents()).toEqual([]);

  m.start('x');
  await m.minutes(1);
  m.stop('x');
  await m.minutes(2);
  expect(m.alerting.incidents()).toMatchObject([{ state: 'open' }]);
  // Auto-closed 30 min after its last point, and not opened again for the same silence.
  await m.minutes(40);
  expect(m.alerting.incidents()).toMatchObject([{ state: 'closed', closeReason: 'auto-close' }]);
  // New data, then silence again: a new incident.
  m.start('x');
  await m.minutes(1);
  m.stop('x');
  await m.minutes(2);
  expect(m.alerting.incidents().map((i) => i.state)).toEqual(['closed', 'open']);
});

test('absence durations as Monitoring takes them: whole minutes, at least 120 s', () => {
  const m = monitoring();
  const policy = (duration: string) => ({
    displayName: `absent ${duration}`,
    combiner: 'OR',
    conditions: [{ displayName: 'c', conditionAbsent: { filter: `metric.type="${heartbeat}"`, duration } }],
  });
  for (const bad of ['60s', '150s', '90000s'])
    expect(() => m.alerting.createPolicy(project, policy(bad))).toThrow(/duration/);
  expect(m.alerting.createPolicy(project, policy('180s')).conditions[0]).toMatchObject({
    conditionAbsent: { duration: '180s' },
  });
  const both = policy('120s');
  (both.conditions[0] as Record<string, unknown>).conditionThreshold = {
    filter: `metric.type="${heartbeat}"`,
    comparison: 'COMPARISON_GT',
    duration: '60s',
  };
  expect(() => m.alerting.createPolicy(project, both)).toThrow(/one of conditionThreshold, conditionAbsent/);
});
