/**
 * The emulator's Monitoring alerting against the deploy's own alert policies: the policy JSON the
 * deploy plan passes to `gcloud alpha monitoring policies create --policy=…` (taken from the plan
 * itself), evaluated over CPU series of several instances with their VM labels as Monitoring's
 * `metadata.user_labels`; one incident per tier (REDUCE_MEAN across the tier's instances), and the
 * notifications as Monitoring sends them, read by scalingAlerts' parser.
 */
import { resolveConfig } from '../../infra-scripts/deploy/config';
import { deployPlan } from '../../infra-scripts/deploy/plan';
import { Alerting, reduce, type SeriesData } from '../../infra-scripts/local/compute-emulator/alerting';
import { cancelledText } from '../../infra-scripts/local/compute-emulator/alerting-notification';
import { parseNotificationText } from '../../shared/scaling-alerts/notification';
import { agentPolicies } from './deploy.inputs';

const project = 'demo-project';
const cpu = 'compute.googleapis.com/instance/cpu/utilization';
const T0 = Date.parse('2026-12-01T10:00:00Z');

interface Vm {
  id: string;
  zone: string;
  labels: Record<string, string>;
}
const vm = (id: string, zone: string, role: string, deployment = 'ilb'): Vm => ({
  id,
  zone,
  labels: { app: 'gce-ilb-orchestrator', deployment, role },
});

/** Monitoring in miniature: CPU series per VM, their labels as resource metadata, a test clock. */
function monitoring(vms: Vm[]) {
  let now = T0;
  const cpuOf = new Map<string, number>();
  const points = new Map<string, { t: number; v: number }[]>();
  const sent: { topic: string; text: string }[] = [];
  const series = (v: Vm, from: number, to: number): SeriesData => ({
    metric: { type: cpu, labels: { instance_name: `vm-${v.id}` } },
    resource: { type: 'gce_instance', labels: { project_id: project, instance_id: v.id, zone: v.zone } },
    points: (points.get(v.id) ?? [])
      .filter((p) => p.t >= from && p.t <= to)
      .map((p) => ({ interval: { endTime: new Date(p.t).toISOString() }, value: { doubleValue: p.v } })),
  });
  const alerting = new Alerting({
    project,
    projectNumber: '123456789012',
    clock: () => now,
    store: {
      list: (q) => {
        expect(q.filter).toBe(`metric.type="${cpu}"`);
        const [from, to] = [Date.parse(q.startTime), Date.parse(q.endTime)];
        return { timeSeries: vms.map((v) => series(v, from, to)).filter((s) => s.points.length) };
      },
    },
    resourceMetadata: (r) => ({
      user_labels: vms.find((v) => v.id === r.labels.instance_id)?.labels ?? {},
    }),
    publish: async (topic, data) => void sent.push({ topic, text: data.toString('utf8') }),
  });
  return {
    alerting,
    sent,
    /** A Pub/Sub channel to the scaling-alerts topic, as the deploy creates it; its name. */
    channel: () =>
      alerting.createChannel(project, {
        type: 'pubsub',
        displayName: 'ilb-scaling-alerts',
        labels: { topic: `projects/${project}/topics/scaling-alerts` },
      }).name,
    set: (values: Record<string, number>) => Object.entries(values).forEach(([id, v]) => cpuOf.set(id, v)),
    /** Advances the clock in 10 s steps (one point per VM each) and evaluates after each step. */
    async run(seconds: number) {
      for (let t = 0; t < seconds; t += 10) {
        now += 10_000;
        for (const [id, v] of cpuOf) points.set(id, [...(points.get(id) ?? []), { t: now, v }]);
        await alerting.evaluate();
      }
    },
  };
}

/**
 * The deploy plan's alert policies that notify scalingAlerts (`@{channel}`), as the JSON gcloud
 * reads from `--policy=` (the heartbeat alert notifies the operators, not this channel).
 */
function deployPolicies(channel: string): Record<string, Record<string, unknown>> {
  const plan = deployPlan(resolveConfig({ project }), {
    sourceHash: 'abc',
    agentPolicies,
    functionPolicies: {},
  });
  const creates = plan.steps
    .flatMap((s) => s.run.map((r) => r.args))
    .filter((a) => a.join(' ').startsWith('alpha monitoring policies create'))
    .filter((a) => a.some((x) => x.startsWith('--policy=') && x.includes('"@{channel}"')));
  return Object.fromEntries(
    creates.map((a) => {
      const text = a.find((x) => x.startsWith('--policy='))!.slice('--policy='.length);
      const policy = JSON.parse(text.replace('@{channel}', channel)) as Record<string, unknown>;
      return [String(policy.displayName), policy];
    }),
  );
}

const vms = [
  vm('11', 'us-central1-a', 'backend'),
  vm('12', 'us-central1-b', 'backend'),
  vm('21', 'us-central1-a', 'haproxy'),
  vm('22', 'us-central1-b', 'haproxy'),
  vm('31', 'us-central1-a', 'frontend'),
  vm('41', 'us-central1-a', 'backend', 'other'),
];

const incident = (text: string) =>
  (JSON.parse(text) as { incident: Record<string, unknown> & { metadata: unknown } }).incident;

test("the deploy's CPU policies: accepted, one incident per tier (mean across its VMs), opened and closed", async () => {
  const m = monitoring(vms);
  const channel = m.channel();
  const policies = deployPolicies(channel);
  expect(Object.keys(policies).sort()).toEqual(['ilb backend CPU high', 'ilb haproxy CPU high']);
  const created = Object.fromEntries(
    Object.entries(policies).map(([name, body]) => [name, m.alerting.createPolicy(project, body)]),
  );
  expect(created['ilb backend CPU high']!.conditions[0]).toHaveProperty('conditionThreshold.aggregations', [
    { alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_MEAN' },
  ]);

  // Backend: one VM at 0.95, one at 0.75 (mean 0.85 > 0.8). HAProxy: both at 0.9. The frontend
  // and another deployment's backend are hot too, but outside both policies' filters.
  m.set({ '11': 0.95, '12': 0.75, '21': 0.9, '22': 0.9, '31': 1, '41': 1 });
  await m.run(290);
  expect(m.sent).toHaveLength(0); // violating, but not yet for the 300 s duration
  await m.run(30);
  const opened = m.sent.map((s) => parseNotificationText(s.text));
  expect(opened).toHaveLength(2);
  const byPolicy = Object.fromEntries(opened.map((r) => [r.ok ? r.incident.policyName : '', r]));
  for (const role of ['backend', 'haproxy']) {
    const r = byPolicy[`ilb ${role} CPU high`]!;
    if (!r.ok) throw new Error(r.reason);
    expect(r.incident).toMatchObject({
      state: 'open',
      userLabels: { app: 'gce-ilb-orchestrator', deployment: 'ilb' },
      metricType: cpu,
      resourceType: 'gce_instance',
      // Aggregated away: instance, zone and metric labels; the series' project stays.
      resourceLabels: { project_id: project },
      metricLabels: {},
      thresholdValue: 0.8,
    });
    expect(r.incident.observedValue).toBeCloseTo(role === 'backend' ? 0.85 : 0.9, 3);
  }
  expect(m.sent.every((s) => s.topic === `projects/${project}/topics/scaling-alerts`)).toBe(true);

  // The backend tier cools down (mean 0.625): its incident closes; HAProxy's stays open.
  m.set({ '11': 0.5 });
  await m.run(60);
  expect(m.sent).toHaveLength(3);
  const closed = parseNotificationText(m.sent[2]!.text);
  if (!closed.ok) throw new Error(closed.reason);
  expect(closed.incident).toMatchObject({
    policyName: 'ilb backend CPU high',
    state: 'closed',
    cancelled: false,
    id: byPolicy['ilb backend CPU high']!.ok ? byPolicy['ilb backend CPU high']!.incident.id : '',
  });
  expect(m.alerting.incidents().map((i) => [i.policy, i.state])).toEqual([
    [created['ilb backend CPU high']!.name, 'closed'],
    [created['ilb haproxy CPU high']!.name, 'open'],
  ]);
});

test('a condition changed while an incident is open cancels it, as Monitoring notifies it', async () => {
  const m = monitoring(vms);
  const channel = m.channel();
  const body: Record<string, unknown> = {
    ...deployPolicies(channel)['ilb haproxy CPU high'],
    severity: 'ERROR',
  };
  const policy = m.alerting.createPolicy(project, body);
  m.set({ '21': 0.9, '22': 0.9 });
  await m.run(310);
  expect(m.sent).toHaveLength(1);
  const open = incident(m.sent[0]!.text);
  expect(open.severity).toBe('Error');
  expect(open.url).toBe(
    `https://console.cloud.google.com/monitoring/alerting/alerts/${String(open.incident_id)}?channelType=cloud-pubsub&project=${project}`,
  );

  // Only the display name: the condition is the same, nothing is cancelled.
  const id = policy.name.split('/').pop()!;
  await m.alerting.updatePolicy(project, id, { displayName: 'renamed' }, 'displayName');
  expect(m.sent).toHaveLength(1);
  const conditions = structuredClone(body.conditions as unknown) as {
    conditionThreshold: { thresholdValue: number };
  }[];
  conditions[0]!.conditionThreshold.thresholdValue = 0.95;
  await m.alerting.updatePolicy(project, id, { conditions }, 'conditions');
  expect(m.sent).toHaveLength(2);
  const cancelled = incident(m.sent[1]!.text);
  expect(cancelled).toMatchObject({
    incident_id: open.incident_id,
    state: 'closed',
    observed_value: cancelledText,
    severity: 'Error',
    summary: expect.stringContaining(`returned to normal with a value of ${cancelledText}`),
  });
  expect(cancelledText).toMatch(
    /^Incident cancelled because the alert policy condition was deleted or modified/,
  );
  const parsed = parseNotificationText(m.sent[1]!.text);
  expect(parsed.ok && parsed.incident).toMatchObject({
    state: 'closed',
    cancelled: true,
    observedValue: undefined,
  });
  expect(m.alerting.incidents()[0]).toMatchObject({ state: 'closed', closeReason: 'cancelled' });

  // The changed condition starts over: 0.9 no longer exceeds 0.95, nothing opens again.
  await m.run(400);
  expect(m.sent).toHaveLength(2);
});

test('groupByFields: one series, one incident, per group; what is not grouped is aggregated away', async () => {
  const m = monitoring(vms);
  const channel = m.channel();
  const policy = (aggregation: Record<string, unknown>) => ({
    displayName: `cpu by zone ${JSON.stringify(aggregation)}`,
    notificationChannels: [channel],
    conditions: [
      {
        displayName: 'cpu',
        conditionThreshold: {
          filter: `metric.type="${cpu}" AND resource.type="gce_instance" AND metadata.user_labels.deployment="ilb"`,
          comparison: 'COMPARISON_GT',
          thresholdValue: 0.7,
          duration: '0s',
          aggregations: [{ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MAX', ...aggregation }],
        },
      },
    ],
  });
  m.alerting.createPolicy(
    project,
    policy({
      crossSeriesReducer: 'REDUCE_MAX',
      groupByFields: ['resource.label.zone', 'metadata.user_labels."role"'],
    }),
  );
  // Enum numbers as proto3 JSON allows them: 6 is REDUCE_COUNT.
  m.alerting.createPolicy(
    project,
    policy({ crossSeriesReducer: 6, groupByFields: ['resource.labels.zone'] }),
  );
  m.set({ '11': 0.8, '12': 0.2, '21': 0.75, '22': 0.1, '31': 0.9, '41': 0.99 });
  await m.run(10);
  const open = m.alerting.incidents().map((i) => [i.resource.labels, i.metadata.user_labels, i.observed]);
  expect(open).toEqual([
    // REDUCE_MAX by zone and role: us-central1-a backend 0.8, haproxy 0.75, frontend 0.9.
    [{ project_id: project, zone: 'us-central1-a' }, { role: 'backend' }, 0.8],
    [{ project_id: project, zone: 'us-central1-a' }, { role: 'haproxy' }, 0.75],
    [{ project_id: project, zone: 'us-central1-a' }, { role: 'frontend' }, 0.9],
    // REDUCE_COUNT by zone: three ilb VMs in a, two in b; both above 0.7.
    [{ project_id: project, zone: 'us-central1-a' }, {}, 3],
    [{ project_id: project, zone: 'us-central1-b' }, {}, 2],
  ]);
  const sent = m.sent.map((s) => incident(s.text));
  expect(sent[0]!.metadata).toEqual({ system_labels: {}, user_labels: { role: 'backend' } });
});

test('reducers, and the aggregations Monitoring refuses', () => {
  expect(reduce([1, 2, 6], 'REDUCE_MEAN')).toBe(3);
  expect(reduce([1, 2, 6], 'REDUCE_MAX')).toBe(6);
  expect(reduce([1, 2, 6], 'REDUCE_MIN')).toBe(1);
  expect(reduce([1, 2, 6], 'REDUCE_SUM')).toBe(9);
  expect(reduce([1, 2, 6], 'REDUCE_COUNT')).toBe(3);
  const m = monitoring([]);
  const create = (aggregation: Record<string, unknown>, filter = `metric.type="${cpu}"`) =>
    m.alerting.createPolicy(project, {
      displayName: 'p',
      conditions: [
        {
          displayName: 'c',
          conditionThreshold: {
            filter,
            comparison: 'COMPARISON_GT',
            duration: '60s',
            aggregations: [aggregation],
          },
        },
      ],
    });
  // A reducer needs an aligner and an alignment period (the Aggregation reference).
  expect(() => create({ crossSeriesReducer: 'REDUCE_MEAN' })).toThrow(/perSeriesAligner/);
  expect(() => create({ crossSeriesReducer: 'REDUCE_MEAN', perSeriesAligner: 'ALIGN_MEAN' })).toThrow(
    /alignmentPeriod/,
  );
  expect(() =>
    create({ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_STDDEV' }),
  ).toThrow(/unsupported value REDUCE_STDDEV/);
  expect(() =>
    create({
      alignmentPeriod: '60s',
      perSeriesAligner: 'ALIGN_MEAN',
      crossSeriesReducer: 'REDUCE_SUM',
      groupByFields: ['resource.zone'],
    }),
  ).toThrow(/groupByFields/);
  expect(() => create({}, `metric.type="${cpu}" AND metadata.labels.x="y"`)).toThrow(
    /Unsupported filter field/,
  );
  expect(() =>
    create({ alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_MEAN', crossSeriesReducer: 'REDUCE_NONE' }),
  ).not.toThrow();
});
