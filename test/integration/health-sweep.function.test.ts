import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import type { SweepResult } from '../../shared/health-sweep/sweep';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import { project, startTestEmulator, zones } from './compute-emulator-helpers';
import { registerMember, sweepToken } from './health-sweep.support';

// The two entry points as the Functions Framework serves them, configured by the environment.
const [zoneA] = zones as [string, string];
let cluster: ConsulCluster;
let admin: ConsulClient;
let emu: RunningEmulator;
const servers: Server[] = [];

async function serve(target: string): Promise<string> {
  const server = getTestServer(target);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1 });
  const server = cluster.servers[0] as ConsulAgent;
  admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
  );
  ({ emu } = await startTestEmulator());
  Object.assign(process.env, {
    CONSUL_HTTP_ADDR: server.httpAddr,
    CONSUL_HTTP_TOKEN: await sweepToken(server),
    COMPUTE_API_ENDPOINT: emu.url,
    GOOGLE_CLOUD_PROJECT: project,
    LOG_LEVEL: 'silent',
    HEALTH_SWEEP_CONFIG_JSON: JSON.stringify({
      groups: [{ project, zone: zoneA, name: 'backend-a', role: 'backend' }],
    }),
  });
  // Registers both functions with the framework.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../../functions/health-sweep');
}, 60_000);

afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  await emu?.stop();
  await cluster?.stop();
});

describe('healthSweepHttp', () => {
  test('refuses a request without a bearer token (401), whatever IAM let through', async () => {
    const url = await serve('healthSweepHttp');
    const res = await fetch(url, { method: 'POST' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    const basic = await fetch(url, { method: 'POST', headers: { authorization: 'Basic eDp5' } });
    expect(basic.status).toBe(401);
  });

  test('a group that cannot be read: the report says so and the sweep only reports', async () => {
    await registerMember(
      admin,
      { name: 'backend-x', id: '9100000000000000001', zone: zoneA, group: 'backend-a', role: 'backend' },
      project,
    );
    const url = await serve('healthSweepHttp');
    // As the deploy README's curl sends it: the scheme in lower case.
    const res = await fetch(`${url}?dryRun=true`, { headers: { authorization: 'bearer t' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SweepResult;
    expect(body).toMatchObject({ status: 'completed', dryRun: true });
    // The group does not exist in the emulator: a failed read, so report-only.
    expect(body.report?.reportOnly).toEqual(['incomplete-read']);
    expect(body.report?.seen.nodesInGroups).toBe(1);
    expect((await admin.catalog.nodes()).map((n) => n.name)).toContain('backend-x');
  });
});

describe('healthSweep (CloudEvent)', () => {
  test('a Scheduler message runs one sweep and is acknowledged', async () => {
    const url = await serve('healthSweep');
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-id': 'tick-1',
        'ce-specversion': '1.0',
        'ce-source': '//pubsub.googleapis.com/projects/ilb-test/topics/health-sweep',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      },
      body: JSON.stringify({ message: { data: Buffer.from('tick').toString('base64'), messageId: '1' } }),
    });
    expect(res.status).toBeLessThan(300);
    // It ran for real: the lock was taken and released, the bucket and marks untouched (report-only).
    expect(await admin.kv.get('gce-ilb-orchestrator/health-sweep/lock')).toMatchObject({
      value: expect.any(String),
    });
  });
});
