/**
 * Monitoring alerting in the emulator, driven through the real @google-cloud/monitoring clients
 * (REST fallback): channels and policies, then a threshold on a metric in the store that opens,
 * renotifies, closes, auto-closes and cancels incidents, published through the Pub/Sub emulator as
 * schema 1.2 notifications that scalingAlerts' parser accepts. The clock is the test's.
 */
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { googleAuthLibrary } from 'google-gax';
import { AlertPolicyServiceClient } from '@google-cloud/monitoring/build/src/v3/alert_policy_service_client';
import { NotificationChannelServiceClient } from '@google-cloud/monitoring/build/src/v3/notification_channel_service_client';
import { createLogger } from '../../shared/logging';
import { parseNotificationText } from '../../shared/scaling-alerts/notification';
import { matchIncident, parseRuleFile } from '../../shared/scaling-alerts/rules';
import { cpuAlertPolicy } from '../../infra-scripts/deploy/steps/monitoring';
import { sandboxDeployConfig, sandboxScalingRules } from '../../infra-scripts/local/scenarios/alert-setup';
import { cpuUtilization } from '../../infra-scripts/local/scenarios/metrics-agent';
import {
  ProcessDriver,
  startComputeEmulator,
  type RunningEmulator,
} from '../../infra-scripts/local/compute-emulator';
import { startPubsubEmulator, type PubsubEmulator, waitFor } from '../harness';

const project = 'alert-test';
const metricType = 'custom.googleapis.com/ilb/haproxy/request_rate';
let now = Date.parse('2026-11-28T01:00:00Z');
let pubsubEmu: PubsubEmulator;
let pubsub: PubSub;
let emu: RunningEmulator;
let policies: AlertPolicyServiceClient;
let reader: Subscription;
let channels: NotificationChannelServiceClient;
const received: { data: Record<string, unknown>; text: string }[] = [];

beforeAll(async () => {
  pubsubEmu = await startPubsubEmulator();
  pubsub = new PubSub({ projectId: project, apiEndpoint: pubsubEmu.host, emulatorMode: true });
  const [topic] = await pubsub.createTopic('scaling-alerts');
  const [sub] = await topic.createSubscription('reader');
  reader = sub;
  sub.on('message', (m: Message) => {
    const text = m.data.toString('utf8');
    received.push({ data: JSON.parse(text) as Record<string, unknown>, text });
    m.ack();
  });
  emu = await startComputeEmulator({
    project,
    zones: ['us-central1-a'],
    driver: new ProcessDriver(['sh', '-c', 'sleep 1000']),
    logger: createLogger({ name: 'alerting-test', level: process.env.LOG_LEVEL ?? 'warn' }),
    clock: () => now,
    // Rounds are driven by the test.
    alerting: {
      publish: (name, data) => pubsub.topic(name).publishMessage({ data }),
      evaluateIntervalMs: 3_600_000,
    },
  });
  const opts = {
    apiEndpoint: '127.0.0.1',
    port: emu.port,
    protocol: 'http',
    fallback: true,
    authClient: new googleAuthLibrary.PassThroughClient({
      transporterOptions: { fetchImplementation: fetch },
    }),
  };
  policies = new AlertPolicyServiceClient(opts);
  channels = new NotificationChannelServiceClient(opts);
}, 60_000);

afterAll(async () => {
  await Promise.all([policies?.close(), channels?.close()]);
  await emu?.stop();
  await reader?.close();
  await pubsub?.close();
  await pubsubEmu?.stop();
});

/** One point per instance at the current clock, as the metrics agent writes them. */
function write(values: Record<string, number>) {
  emu.monitoring.create({
    timeSeries: Object.entries(values).map(([id, v]) => ({
      metric: { type: metricType },
      resource: {
        type: 'gce_instance',
        labels: { instance_id: id, zone: 'us-central1-a', project_id: project },
      },
      points: [{ interval: { endTime: new Date(now).toISOString() }, value: { doubleValue: v } }],
    })),
  });
}

/** Advances the clock in 10 s steps, writing points each step, and evaluates once per step. */
async function run(seconds: number, values: Record<string, number>) {
  for (let t = 0; t < seconds; t += 10) {
    now += 10_000;
    if (Object.keys(values).length) write(values);
    await emu.alerting!.evaluate();
  }
}

const notificationsOf = (state: string) =>
  received.filter((r) => (r.data.incident as { state: string }).state === state);

let channelName: string;
let policyName: string;

test('channels and policies: create, get, list and delete with the real clients; Google error shapes', async () => {
  const [channel] = await channels.createNotificationChannel({
    name: `projects/${project}`,
    notificationChannel: {
      type: 'pubsub',
      displayName: 'scaling alerts',
      labels: { topic: `projects/${project}/topics/scaling-alerts` },
    },
  });
  channelName = channel.name!;
  expect(channelName).toMatch(new RegExp(`^projects/${project}/notificationChannels/\\d+$`));

  const [policy] = await policies.createAlertPolicy({
    name: `projects/${project}`,
    alertPolicy: {
      displayName: 'haproxy-high-request-rate',
      userLabels: { tier: 'haproxy', action: 'raise-min' },
      combiner: 'OR',
      conditions: [
        {
          displayName: 'HAProxy request rate per instance above 50/s',
          conditionThreshold: {
            filter: `metric.type="${metricType}" resource.type="gce_instance"`,
            comparison: 'COMPARISON_GT',
            thresholdValue: 50,
            duration: { seconds: 60 },
            aggregations: [{ alignmentPeriod: { seconds: 60 }, perSeriesAligner: 'ALIGN_MEAN' }],
          },
        },
      ],
      notificationChannels: [channelName],
      alertStrategy: {
        autoClose: { seconds: 1800 },
        notificationChannelStrategy: [
          { notificationChannelNames: [channelName], renotifyInterval: { seconds: 300 } },
        ],
      },
    },
  });
  policyName = policy.name!;
  expect(policy.conditions?.[0]?.name).toMatch(new RegExp(`^${policyName}/conditions/\\d+$`));
  expect(policy.userLabels).toEqual({ tier: 'haproxy', action: 'raise-min' });
  expect(Number(policy.alertStrategy?.notificationChannelStrategy?.[0]?.renotifyInterval?.seconds)).toBe(300);

  const [got] = await policies.getAlertPolicy({ name: policyName });
  expect(got.displayName).toBe('haproxy-high-request-rate');
  // Disabled and enabled again through updateAlertPolicy with a field mask; other fields stay.
  const [disabled] = await policies.updateAlertPolicy({
    alertPolicy: { name: policyName, enabled: { value: false }, displayName: 'ignored: not in the mask' },
    updateMask: { paths: ['enabled'] },
  });
  expect(disabled.enabled?.value ?? disabled.enabled).toBe(false);
  expect(disabled.displayName).toBe('haproxy-high-request-rate');
  const [enabled] = await policies.updateAlertPolicy({
    alertPolicy: { name: policyName, enabled: { value: true } },
    updateMask: { paths: ['enabled'] },
  });
  expect(enabled.enabled?.value ?? enabled.enabled).toBe(true);
  const [list] = await policies.listAlertPolicies({ name: `projects/${project}` });
  expect(list.map((p) => p.name)).toEqual([policyName]);

  // An unsupported aligner and a channel that does not exist: 400 INVALID_ARGUMENT.
  await expect(
    policies.createAlertPolicy({
      name: `projects/${project}`,
      alertPolicy: {
        displayName: 'bad',
        conditions: [
          {
            displayName: 'bad',
            conditionThreshold: {
              filter: `metric.type="${metricType}"`,
              comparison: 'COMPARISON_GT',
              duration: { seconds: 30 },
            },
          },
        ],
        notificationChannels: [`projects/${project}/notificationChannels/404`],
      },
    }),
  ).rejects.toMatchObject({
    code: 400,
    message: expect.stringMatching(/duration must be a multiple of 60s/),
  });
  await expect(
    policies.getAlertPolicy({ name: `projects/${project}/alertPolicies/1` }),
  ).rejects.toMatchObject({
    code: 404,
  });
  const [other] = await policies.createAlertPolicy({
    name: `projects/${project}`,
    alertPolicy: {
      displayName: 'to delete',
      conditions: [
        {
          displayName: 'x',
          conditionThreshold: {
            filter: `metric.type="${metricType}"`,
            comparison: 'COMPARISON_LT',
            duration: { seconds: 0 },
          },
        },
      ],
    },
  });
  await policies.deleteAlertPolicy({ name: other.name! });
  const [after] = await policies.listAlertPolicies({ name: `projects/${project}` });
  expect(after.map((p) => p.name)).toEqual([policyName]);
});

test('a threshold held for its duration opens an incident; renotified while open; closed when it clears', async () => {
  await run(50, { '101': 80, '102': 10 });
  expect(received).toHaveLength(0); // violating, but not yet for 60 s
  await run(30, { '101': 80, '102': 10 });
  await waitFor('the open notification', async () => notificationsOf('open').length === 1, {
    timeoutMs: 10_000,
  });
  const open = parseNotificationText(notificationsOf('open')[0]!.text);
  expect(open.ok).toBe(true);
  if (!open.ok) return;
  expect(open.incident).toMatchObject({
    state: 'open',
    policyName: 'haproxy-high-request-rate',
    userLabels: { tier: 'haproxy', action: 'raise-min' },
    metricType,
    resourceLabels: { instance_id: '101', zone: 'us-central1-a', project_id: project },
    project,
    thresholdValue: 50,
    observedValue: 80,
  });
  expect(open.incident.policyId).toBe(policyName);
  const raw = notificationsOf('open')[0]!.data as { version: string; incident: Record<string, unknown> };
  expect(raw.version).toBe('1.2');
  expect(raw.incident).toMatchObject({
    ended_at: null,
    scoping_project_id: project,
    // The console link as Monitoring's Pub/Sub notifications carry it.
    url: `https://console.cloud.google.com/monitoring/alerting/alerts/${open.incident.id}?channelType=cloud-pubsub&project=${project}`,
  });
  expect(typeof raw.incident.scoping_project_number).toBe('number');

  // Renotified every 300 s while it stays open: the same incident, still open.
  await run(300, { '101': 80, '102': 10 });
  await waitFor('a renotification', async () => notificationsOf('open').length === 2, { timeoutMs: 10_000 });
  const again = notificationsOf('open')[1]!.data as { incident: { incident_id: string } };
  expect(again.incident.incident_id).toBe(open.incident.id);

  // Load drops: the 60 s mean falls below the threshold and the incident closes.
  await run(60, { '101': 5, '102': 10 });
  await waitFor('the closed notification', async () => notificationsOf('closed').length === 1, {
    timeoutMs: 10_000,
  });
  const closed = parseNotificationText(notificationsOf('closed')[0]!.text);
  expect(closed.ok && closed.incident).toMatchObject({ id: open.incident.id, state: 'closed' });
  expect(closed.ok && closed.incident.endedAt).toBeGreaterThan(open.incident.startedAt);
});

test('the fault switch drops a close notification; an incident without data auto-closes after autoClose', async () => {
  const before = received.length;
  await run(70, { '201': 90 });
  await waitFor('the second incident', async () => notificationsOf('open').length === 3, {
    timeoutMs: 10_000,
  });
  emu.alerting!.dropNotifications('closed', 1);
  await run(60, { '201': 1 });
  const dropped = emu.alerting!.deliveries().filter((d) => d.dropped);
  expect(dropped).toEqual([expect.objectContaining({ state: 'closed' })]);
  await new Promise((r) => setTimeout(r, 1000));
  expect(notificationsOf('closed')).toHaveLength(1);

  // A third incident whose instance stops reporting: open until autoClose (1800 s), then closed.
  await run(70, { '301': 90 });
  await waitFor('the third incident', async () => notificationsOf('open').length === 4, {
    timeoutMs: 10_000,
  });
  await run(1800, {});
  await waitFor('the auto-close', async () => notificationsOf('closed').length === 2, { timeoutMs: 10_000 });
  const auto = notificationsOf('closed')[1]!.data as { incident: { summary: string } };
  expect(auto.incident.summary).toMatch(/no data/);
  expect(received.length).toBeGreaterThan(before);
  const states = emu
    .alerting!.incidents()
    .map((i) => [i.resource.labels.instance_id, i.state, i.closeReason]);
  expect(states).toEqual([
    ['101', 'closed', 'cleared'],
    ['201', 'closed', 'cleared'],
    ['301', 'closed', 'auto-close'],
  ]);
});

test('a condition changed while its incident is open cancels it, notified as Monitoring does', async () => {
  const condition = (threshold: number) => ({
    displayName: `request rate of 401 above ${threshold}/s`,
    conditionThreshold: {
      filter: `metric.type="${metricType}" resource.type="gce_instance" resource.labels.instance_id="401"`,
      comparison: 'COMPARISON_GT' as const,
      thresholdValue: threshold,
      duration: { seconds: 60 },
      aggregations: [{ alignmentPeriod: { seconds: 60 }, perSeriesAligner: 'ALIGN_MEAN' as const }],
    },
  });
  const [policy] = await policies.createAlertPolicy({
    name: `projects/${project}`,
    alertPolicy: {
      displayName: 'cancelled-by-change',
      severity: 'ERROR',
      conditions: [condition(500)],
      notificationChannels: [channelName],
    },
  });
  const mine = (state: string) =>
    notificationsOf(state).filter(
      (r) => (r.data.incident as { policy_name: string }).policy_name === 'cancelled-by-change',
    );
  await run(70, { '401': 900 });
  await waitFor('the open notification', async () => mine('open').length === 1, { timeoutMs: 10_000 });
  const opened = mine('open')[0]!.data.incident as { incident_id: string; severity: string };
  expect(opened.severity).toBe('Error');

  // The same condition again (a new display name elsewhere): nothing is cancelled.
  await policies.updateAlertPolicy({
    alertPolicy: { name: policy.name, displayName: 'cancelled-by-change' },
    updateMask: { paths: ['displayName'] },
  });
  await policies.updateAlertPolicy({
    alertPolicy: { name: policy.name, conditions: [condition(1000)] },
    updateMask: { paths: ['conditions'] },
  });
  await waitFor('the cancellation', async () => mine('closed').length === 1, { timeoutMs: 10_000 });
  const closed = mine('closed')[0]!;
  expect(closed.data.incident).toMatchObject({
    incident_id: opened.incident_id,
    severity: 'Error',
    observed_value:
      'Incident cancelled because the alert policy condition was deleted or modified while incident was active.',
  });
  const parsed = parseNotificationText(closed.text);
  expect(parsed.ok && parsed.incident).toMatchObject({
    id: opened.incident_id,
    state: 'closed',
    cancelled: true,
    observedValue: undefined,
  });
  // The new condition starts over: 900 does not exceed 1000, nothing opens again.
  await run(120, { '401': 900 });
  expect(mine('open')).toHaveLength(1);
});

test("the deploy's own CPU policies: one incident per tier on the tier's mean, closed when the tier cools", async () => {
  // Two VMs per tier, labelled as the deploy labels them (the policies filter on metadata.user_labels).
  const scope = { kind: 'zones' as const, name: 'us-central1-a' };
  for (const role of ['backend', 'haproxy'] as const) {
    emu.emulator.addTemplate(`${role}-tmpl`, {
      machineType: 'e2-small',
      labels: { role, deployment: 'ilb' },
    });
    emu.emulator.insertIgm(
      scope,
      { name: role, baseInstanceName: role, instanceTemplate: `${role}-tmpl`, targetSize: 2 },
      { userAgent: 'test' },
    );
  }
  await waitFor('four instances', async () => emu.emulator.allInstances().length === 4, {
    timeoutMs: 30_000,
  });
  const ids = (role: string) =>
    emu.emulator
      .allInstances()
      .filter((i) => i.labels.role === role)
      .map((i) => i.id);
  const [b1, b2] = ids('backend') as [string, string];
  const [h1, h2] = ids('haproxy') as [string, string];

  // The policies exactly as the deploy generates them (REST JSON, as gcloud sends --policy), with the
  // channel the deploy would look up.
  const c = sandboxDeployConfig();
  const names: string[] = [];
  for (const role of ['backend', 'haproxy'] as const) {
    const res = await fetch(`http://127.0.0.1:${emu.port}/v3/projects/${project}/alertPolicies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...cpuAlertPolicy(c, role), notificationChannels: [channelName] }),
    });
    expect(res.status).toBe(200);
    names.push(((await res.json()) as { displayName: string }).displayName);
  }
  expect(names).toEqual(['ilb backend CPU high', 'ilb haproxy CPU high']);
  const cpuNotifications = (state: string) =>
    notificationsOf(state).filter((r) =>
      names.includes((r.data.incident as { policy_name: string }).policy_name),
    );

  async function cpu(seconds: number, values: Record<string, number>) {
    for (let t = 0; t < seconds; t += 10) {
      now += 10_000;
      emu.monitoring.recordSystem({
        timeSeries: Object.entries(values).map(([id, v]) => ({
          metric: { type: cpuUtilization },
          resource: {
            type: 'gce_instance',
            labels: { instance_id: id, zone: scope.name, project_id: project },
          },
          points: [{ interval: { endTime: new Date(now).toISOString() }, value: { doubleValue: v } }],
        })),
      });
      await emu.alerting!.evaluate();
    }
  }
  // Customers cannot write Google's metrics: only the emulator's own agent path records them.
  expect(() =>
    emu.monitoring.create({
      timeSeries: [
        {
          metric: { type: cpuUtilization },
          resource: { type: 'gce_instance', labels: { instance_id: b1 } },
          points: [{ interval: { endTime: new Date(now).toISOString() }, value: { doubleValue: 1 } }],
        },
      ],
    }),
  ).toThrow(/custom metric types only/);

  // Backend hot on both VMs; one haproxy VM hot, the other idle: the haproxy tier's mean (0.6) stays
  // under 0.8, so only the backend policy opens, once, after its five minutes.
  await cpu(290, { [b1]: 0.9, [b2]: 0.95, [h1]: 0.95, [h2]: 0.25 });
  expect(cpuNotifications('open')).toHaveLength(0);
  await cpu(20, { [b1]: 0.9, [b2]: 0.95, [h1]: 0.95, [h2]: 0.25 });
  await waitFor('the backend incident', async () => cpuNotifications('open').length === 1, {
    timeoutMs: 10_000,
  });
  const open = parseNotificationText(cpuNotifications('open')[0]!.text);
  expect(open.ok && open.incident).toMatchObject({
    policyName: 'ilb backend CPU high',
    metricType: cpuUtilization,
    thresholdValue: 0.8,
    observedValue: 0.925,
  });
  // Reduced across the tier: the incident names no instance.
  expect(open.ok && open.incident.resourceLabels.instance_id).toBeUndefined();
  // The sandbox's rule file (the deploy's generated one) sends it to the backend tier.
  const rules = parseRuleFile(sandboxScalingRules());
  expect(rules.ok).toBe(true);
  if (!rules.ok || !open.ok) return;
  expect(matchIncident(open.incident, rules.rules)).toMatchObject({
    ok: true,
    target: { rule: 'backend-cpu-high', tierName: 'backend', change: { type: 'raise-min', by: 2 } },
  });

  // The haproxy tier heats up as a whole: its own single incident, once the 60 s means of the tier
  // have stayed above 0.8 for five minutes.
  await cpu(360, { [b1]: 0.9, [b2]: 0.95, [h1]: 0.95, [h2]: 0.85 });
  await waitFor('the haproxy incident', async () => cpuNotifications('open').length >= 2, {
    timeoutMs: 10_000,
  });
  const policiesOpened = cpuNotifications('open').map(
    (r) => (r.data.incident as { policy_name: string }).policy_name,
  );
  expect(new Set(policiesOpened)).toEqual(new Set(names));
  const cpuIncidents = () => emu.alerting!.incidents().filter((i) => i.metric.type === cpuUtilization);
  expect(cpuIncidents().filter((i) => i.state === 'open')).toHaveLength(2);

  // Both tiers cool down: both incidents close, and scalingAlerts hears it (notificationPrompts CLOSED).
  await cpu(70, { [b1]: 0.1, [b2]: 0.1, [h1]: 0.1, [h2]: 0.1 });
  await waitFor('both closed', async () => cpuNotifications('closed').length === 2, { timeoutMs: 10_000 });
  expect(cpuIncidents().map((i) => i.state)).toEqual(['closed', 'closed']);
}, 120_000);
