import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { freePort, repoRoot, startConsulDev, startProcess, waitFor, type ConsulDev } from '../harness';
import { clients, project, startTestEmulator, zones } from './compute-emulator-helpers';
import { alertPolicy, functionToken, notification, policiesOnly } from './scaling-alerts.support';

/** The built `scalingAlerts` in the Functions Framework, configured by its environment only. */
const root = repoRoot();
const entry = path.join(root, 'dist', 'functions', 'index.js');
const framework = path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
const zone = zones[0]!;

let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let consul: ConsulDev;
let server: Awaited<ReturnType<typeof startProcess>>;
let port: number;

const rules = {
  version: 1,
  ownership: { namePrefixes: ['ilb-'] },
  tiers: {
    haproxy: {
      autoscalers: [{ zone, name: 'ilb-haproxy' }],
      floor: 1,
      ceiling: 4,
      maxStep: 2,
      cooldownSec: 0,
      maxChangesPerHour: 10,
      lease: { defaultSec: 600, maxSec: 1200 },
    },
  },
};

beforeAll(async () => {
  // `npm test` builds before jest; run alone, the test builds what is missing.
  if (!existsSync(path.join(root, 'dist', 'functions', 'scaling-alerts', 'index.js')))
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
  ({ emu } = await startTestEmulator({ alerting: policiesOnly }));
  c = clients(emu.port);
  consul = await startConsulDev();
  const token = await functionToken(consul);
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'ilb-haproxy-mig',
      baseInstanceName: 'ilb-haproxy',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 1,
    },
  });
  await c.autoscalers.insert({
    project,
    zone,
    autoscalerResource: {
      name: 'ilb-haproxy',
      target: `projects/${project}/zones/${zone}/instanceGroupManagers/ilb-haproxy-mig`,
      autoscalingPolicy: { minNumReplicas: 1, maxNumReplicas: 4, coolDownPeriodSec: 0 },
    },
  });
  port = await freePort();
  server = await startProcess({
    name: 'functions-framework',
    command: process.execPath,
    args: [framework, '--target=scalingAlerts', `--source=${entry}`, `--port=${port}`],
    env: {
      ...process.env,
      METADATA_SERVER_DETECTION: 'none',
      CONSUL_HTTP_ADDR: consul.httpAddr,
      CONSUL_HTTP_TOKEN: token,
      COMPUTE_API_ENDPOINT: emu.url,
      GOOGLE_CLOUD_PROJECT: project,
      SCALING_RULES_JSON: JSON.stringify(rules),
    },
    readyTimeoutMs: 20_000,
    ready: async () =>
      (await fetch(`http://127.0.0.1:${port}/`, { method: 'GET' }).catch(() => undefined)) !== undefined,
  });
});

afterAll(async () => {
  await server?.stop();
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

let n = 0;
const post = (data: unknown) =>
  fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-id': `event-${++n}`,
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/${project}/topics/scaling-alerts`,
    },
    body: JSON.stringify(data),
  });

async function schedules() {
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'ilb-haproxy' });
  return Object.keys(a.autoscalingPolicy?.scalingSchedules ?? {});
}

test('an open incident raises the floor, its close removes the lease; both acknowledged', async () => {
  const condition = await alertPolicy(emu.url, { tier: 'haproxy', action: 'raise-min' });
  const res = await post(
    notification({ id: '0.fn1', state: 'open', action: 'raise-min', zone, project, condition }),
  );
  expect(res.status).toBe(204);
  expect(await schedules()).toHaveLength(1);
  await waitFor('the applied decision in the log', async () =>
    /"decision":"applied".*scalingAlerts decision: applied/.test(server.output()),
  );
  const closed = await post(
    notification({ id: '0.fn1', state: 'closed', action: 'raise-min', zone, project, condition }),
  );
  expect(closed.status).toBe(204);
  expect(await schedules()).toEqual([]);
});

test("the console's test notification is acknowledged with a log line and changes nothing", async () => {
  const body = { version: 'test', incident: { state: 'OPEN', summary: 'test' } };
  const res = await post({ message: { data: Buffer.from(JSON.stringify(body)).toString('base64') } });
  expect(res.status).toBe(204);
  await waitFor('the ignored notification in the log', async () =>
    /"decision":"ignored".*test notification/.test(server.output()),
  );
  expect(await schedules()).toEqual([]);
});
