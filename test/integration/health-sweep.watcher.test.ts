/**
 * Who watches the watcher, and who may make it act: the health-sweep entry points as the Functions
 * Framework serves them, against a real Consul (the sweep's own policy) and the Compute emulator,
 * whose Monitoring store receives the heartbeats and the sweep's metrics.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import type { SweepResult } from '../../shared/health-sweep/sweep';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import { clients, eventually, project, startTestEmulator, zones } from './compute-emulator-helpers';
import { registerMember, sweepToken, type Member } from './health-sweep.support';

const [zoneA] = zones as [string, string];
let cluster: ConsulCluster;
let admin: ConsulClient;
let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
const servers: Server[] = [];
const stale: Member = {
  name: 'backend-gone',
  id: '9300000000000000001',
  zone: zoneA,
  group: 'backend-a',
  role: 'backend',
};

async function serve(target: string): Promise<string> {
  const server = getTestServer(target);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const call = async (url: string, body?: unknown, method = 'POST') => {
  const res = await fetch(url, {
    method,
    headers: {
      authorization: 'Bearer t',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as SweepResult & { error?: string } };
};

/** The latest value of each series of a custom metric, by its label `label`. */
function latest(metric: string, label: string): Record<string, number> {
  const listed = emu.monitoring.list({
    filter: `metric.type = "custom.googleapis.com/ilb/${metric}"`,
    startTime: new Date(Date.now() - 600_000).toISOString(),
    endTime: new Date(Date.now() + 60_000).toISOString(),
  });
  return Object.fromEntries(
    listed.timeSeries.map((t) => [t.metric.labels?.[label] ?? '', t.points[0]?.value.doubleValue ?? NaN]),
  );
}

const nodeNames = async () => (await admin.catalog.nodes()).map((n) => n.name);

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1 });
  const server = cluster.servers[0] as ConsulAgent;
  admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
  );
  ({ emu } = await startTestEmulator());
  c = clients(emu.port);
  const [z] = await c.igms.insert({
    project,
    zone: zoneA,
    instanceGroupManagerResource: {
      name: 'backend-a',
      baseInstanceName: 'backend',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 2,
    },
  });
  await c.zoneOps.wait({ project, zone: zoneA, operation: (z.latestResponse as { name: string }).name });
  // Every member has its passing node, as its agent would register it.
  await eventually(async () => {
    const [members] = await c.igms.listManagedInstances({
      project,
      zone: zoneA,
      instanceGroupManager: 'backend-a',
    });
    if (members.length !== 2 || members.some((m) => m.instanceStatus !== 'RUNNING')) return false;
    for (const m of members) {
      const name = /instances\/([^/]+)$/.exec(m.instance ?? '')?.[1] ?? '';
      await registerMember(
        admin,
        { name, id: String(m.id), zone: zoneA, group: 'backend-a', role: 'backend' },
        project,
      );
    }
    return true;
  }, 30_000);
  Object.assign(process.env, {
    CONSUL_HTTP_ADDR: server.httpAddr,
    CONSUL_HTTP_TOKEN: await sweepToken(server),
    COMPUTE_API_ENDPOINT: emu.url,
    GOOGLE_CLOUD_PROJECT: project,
    LOG_LEVEL: 'silent',
    HEALTH_SWEEP_CONFIG_JSON: JSON.stringify({
      groups: [{ project, zone: zoneA, name: 'backend-a', role: 'backend' }],
      thresholds: { bootGraceSeconds: 3600 },
    }),
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../../functions/health-sweep');
}, 90_000);

afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  await c?.close();
  await emu?.stop();
  await cluster?.stop();
});

beforeEach(async () => {
  // A node whose instance is gone (Compute answers 404 for its id): stale at once.
  await registerMember(admin, stale, project);
});

describe('healthSweepHttp: reports only', () => {
  test('no body, an empty body, dryRun=false: a report, and the stale node stays', async () => {
    const url = await serve('healthSweepHttp');
    for (const r of [
      await call(url),
      await call(url, {}),
      await call(`${url}?dryRun=false`, { dryRun: false }),
    ]) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'completed', dryRun: true });
      expect(r.body.report?.stale).toEqual([expect.objectContaining({ node: stale.name })]);
    }
    expect((await call(url, undefined, 'GET')).body.dryRun).toBe(true);
    expect(await nodeNames()).toContain(stale.name);
  });

  test('asking it to act is refused (403), pointing at the acting entry point', async () => {
    const url = await serve('healthSweepHttp');
    const r = await call(url, { act: true });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatch(/healthSweepActHttp/);
    expect(await nodeNames()).toContain(stale.name);
  });

  test('writes its heartbeat after a completed run', async () => {
    await call(await serve('healthSweepHttp'));
    expect(latest('function_heartbeat', 'function')).toMatchObject({ healthSweepHttp: 1 });
  });
});

describe('healthSweepActHttp: acts only on {"act": true}', () => {
  test('without act (or act false, a string, a GET, or with dryRun) it reports', async () => {
    const url = await serve('healthSweepActHttp');
    const asks: Array<[string, unknown, string?]> = [
      [url, undefined],
      [url, { act: false }],
      [url, { act: true, dryRun: true }],
      [`${url}?dryRun=1`, { act: true }],
      [`${url}?act=true`, undefined, 'GET'],
    ];
    for (const [u, body, method] of asks) {
      const r = await call(u, body, method);
      expect({ body, status: r.status, dryRun: r.body.dryRun }).toEqual({ body, status: 200, dryRun: true });
    }
    expect((await call(url, { act: 'true' })).status).toBe(400);
    expect(await nodeNames()).toContain(stale.name);
  });

  test('with act: the stale node is removed, counted as repaired without an event, and the heartbeat written', async () => {
    const url = await serve('healthSweepActHttp');
    const r = await call(url, { act: true });
    expect(r.status).toBe(200);
    expect(r.body.dryRun).toBe(false);
    expect(r.body.done.filter((d) => d.action.type === 'deregister')).toEqual([
      expect.objectContaining({
        action: expect.objectContaining({ type: 'deregister', node: stale.name }),
        outcome: 'done',
      }),
    ]);
    expect(await nodeNames()).not.toContain(stale.name);
    expect(latest('sweep_repaired_without_event', 'kind')).toEqual({ stale: 1, broken: 0 });
    expect(latest('function_heartbeat', 'function')).toMatchObject({ healthSweepActHttp: 1 });
    // The next sweep finds nothing to repair: the series goes back to 0.
    await call(url, { act: true });
    expect(latest('sweep_repaired_without_event', 'kind')).toEqual({ stale: 0, broken: 0 });
  });
});

describe('healthSweep (CloudEvent)', () => {
  test('a Scheduler tick sweeps and writes the heartbeat of healthSweep', async () => {
    const url = await serve('healthSweep');
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-id': 'tick-1',
        'ce-specversion': '1.0',
        'ce-source': `//pubsub.googleapis.com/projects/${project}/topics/health-sweep`,
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      },
      body: JSON.stringify({ message: { data: Buffer.from('tick').toString('base64'), messageId: '1' } }),
    });
    expect(res.status).toBeLessThan(300);
    expect(latest('function_heartbeat', 'function')).toMatchObject({ healthSweep: 1 });
    // The scheduled sweep acts: the stale node is gone.
    expect(await nodeNames()).not.toContain(stale.name);
  });
});
