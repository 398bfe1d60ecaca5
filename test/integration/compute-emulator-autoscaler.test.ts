import { googleAuthLibrary } from 'google-gax';
import { MetricServiceClient } from '@google-cloud/monitoring/build/src/v3/metric_service_client';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';

const zone = zones[0]!;
const metric = 'custom.googleapis.com/ilb/backend/request_rate';

let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let monitoring: MetricServiceClient;

beforeAll(async () => {
  ({ emu } = await startTestEmulator({ stabilizationSec: 2 }));
  c = clients(emu.port);
  monitoring = new MetricServiceClient({
    fallback: true,
    apiEndpoint: '127.0.0.1',
    port: emu.port,
    protocol: 'http',
    authClient: new googleAuthLibrary.PassThroughClient({
      transporterOptions: { fetchImplementation: fetch },
    }),
  });
});

afterAll(async () => {
  await Promise.all([c?.close(), monitoring?.close()]);
  await emu?.stop();
});

async function sizes() {
  const [items] = await c.igms.listManagedInstances({ project, zone, instanceGroupManager: 'web' });
  return items;
}

/** One point per running instance, as an agent on each would report it. */
async function report(valueFor: (i: number) => number) {
  const items = (await sizes()).filter((m) => m.instanceStatus === 'RUNNING');
  await monitoring.createTimeSeries({
    name: `projects/${project}`,
    timeSeries: items.map((m, i) => ({
      metric: { type: metric, labels: { tier: 'backend' } },
      resource: { type: 'gce_instance', labels: { instance_id: String(m.id), zone, project_id: project } },
      points: [
        {
          interval: { endTime: { seconds: Math.floor(Date.now() / 1000), nanos: (Date.now() % 1000) * 1e6 } },
          value: { doubleValue: valueFor(i) },
        },
      ],
    })),
  });
  return items.length;
}

test('the autoscaler scales out and back in on a custom metric written through the Monitoring client', async () => {
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'web',
      baseInstanceName: 'web',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 1,
    },
  });
  await c.autoscalers.insert({
    project,
    zone,
    autoscalerResource: {
      name: 'web-as',
      target: `projects/${project}/zones/${zone}/instanceGroupManagers/web`,
      autoscalingPolicy: {
        minNumReplicas: 1,
        maxNumReplicas: 3,
        coolDownPeriodSec: 0,
        customMetricUtilizations: [{ metric, utilizationTarget: 100, utilizationTargetType: 'GAUGE' }],
      },
    },
  });
  await eventually(async () => (await sizes()).filter((m) => m.instanceStatus === 'RUNNING').length === 1);

  // 250 per instance against a target of 100: the group needs 3 (ceil 2.5).
  await report(() => 250);
  await eventually(async () => {
    if ((await report(() => 250)) === 3) return true;
    await new Promise((r) => setTimeout(r, 300));
    return false;
  });
  const [as] = await c.autoscalers.get({ project, zone, autoscaler: 'web-as' });
  expect(as.recommendedSize).toBe(3);

  // Reading the series back through the client proves the list subset.
  const [series] = await monitoring.listTimeSeries({
    name: `projects/${project}`,
    filter: `metric.type = "${metric}" AND metric.labels.tier = "backend"`,
    interval: {
      startTime: { seconds: Math.floor(Date.now() / 1000) - 60 },
      endTime: { seconds: Math.floor(Date.now() / 1000) + 1 },
    },
  });
  expect(series.length).toBeGreaterThanOrEqual(1);
  expect(series[0]!.points![0]!.value!.doubleValue).toBe(250);

  // Asking for more than max is capped and says so.
  await report(() => 1000);
  await eventually(async () => {
    const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'web-as' });
    return (a.statusDetails ?? []).some((d) => d.type === 'CAPPED_AT_MAX_NUM_REPLICAS');
  });

  // Load gone: after the stabilization window the group returns to its minimum.
  await eventually(async () => {
    await report(() => 5);
    const running = (await sizes()).length;
    if (running === 1) return true;
    await new Promise((r) => setTimeout(r, 300));
    return false;
  }, 30_000);
});

test('mode ONLY_SCALE_OUT keeps the size when the load drops', async () => {
  const [p] = await c.autoscalers.patch({
    project,
    zone,
    autoscaler: 'web-as',
    autoscalerResource: { autoscalingPolicy: { mode: 'ONLY_SCALE_OUT' } },
  });
  await c.zoneOps.wait({ project, zone, operation: (p.latestResponse as { name: string }).name });
  await eventually(async () => {
    await report(() => 200);
    return (await sizes()).filter((m) => m.instanceStatus === 'RUNNING').length === 2;
  });
  for (let i = 0; i < 8; i++) {
    await report(() => 1);
    await new Promise((r) => setTimeout(r, 500));
  }
  expect((await sizes()).length).toBe(2);
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'web-as' });
  expect((a.statusDetails ?? []).map((d) => d.type)).toContain('MODE_ONLY_SCALE_OUT');
});

test('timeSeries writes out of order and non-custom metrics are rejected with INVALID_ARGUMENT', async () => {
  const point = (s: number) => [{ interval: { endTime: { seconds: s } }, value: { doubleValue: 1 } }];
  const ts = (type: string, s: number) => ({
    metric: { type },
    resource: { type: 'global', labels: {} },
    points: point(s),
  });
  const now = Math.floor(Date.now() / 1000);
  await monitoring.createTimeSeries({
    name: `projects/${project}`,
    timeSeries: [ts('custom.googleapis.com/ilb/x', now)],
  });
  await expect(
    monitoring.createTimeSeries({
      name: `projects/${project}`,
      timeSeries: [ts('custom.googleapis.com/ilb/x', now - 10)],
    }),
  ).rejects.toMatchObject({ code: 400 });
  await expect(
    monitoring.createTimeSeries({
      name: `projects/${project}`,
      timeSeries: [ts('compute.googleapis.com/instance/cpu', now)],
    }),
  ).rejects.toMatchObject({ code: 400 });
});
