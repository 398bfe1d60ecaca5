/**
 * The whole load-balancing system from the files under packer/: 3 Consul servers, backend,
 * haproxy and frontend "instances" (agent + role processes via launchInstance), the metadata stand-in.
 * Needs `npm run build` first (the instances run the apps from dist/).
 */
import { randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';

import { startLoad } from '../../infra-scripts/local/load';
import { launchInstance, type LocalInstance, type Role } from '../../infra-scripts/local/instance';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { readRuntime } from '../../services/haproxy-sync/runtime';
import { nodeMetaKeys, services } from '../../shared/contract';
import { agentTokenOf, roleTokens as setupRoleTokens, type RoleTokens } from './system-support';
import {
  CONSUL_HTTP_PORT,
  randomLoopbackPrefix,
  sleep,
  startConsulCluster,
  waitFor,
  type ConsulCluster,
} from '../harness';

jest.setTimeout(300_000);

const mainZone = 'us-central1-a';
const prefix = randomLoopbackPrefix();
let cluster: ConsulCluster;
let md: MetadataServer;
const instances: LocalInstance[] = [];
let nextHost = 20;
let roleTokens: RoleTokens;
const logs: string[] = [];

async function boot(
  role: Role,
  name: string,
  zone = mainZone,
): Promise<{ instance: LocalInstance; id: string; name: string }> {
  const ip = `${prefix}.${nextHost++}`;
  const id = `${randomInt(1, 9)}${String(randomInt(0, 1e9)).padStart(9, '0')}${String(randomInt(0, 1e9)).padStart(9, '0')}`;
  const metadataHost = await md.addInstance({
    id,
    name,
    zone,
    ip,
    projectId: 'demo-project',
    projectNumber: '424242',
    tags: [role],
    attributes: {
      'created-by': `projects/424242/zones/${zone}/instanceGroupManagers/${role}-mig`,
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'consul-default-token': roleTokens[`${role}-default`],
      'ilb-drain-seconds': '4',
    },
  });
  const instance = await launchInstance({
    role,
    ip,
    metadataHost,
    onOutput: (unit, chunk) => logs.push(`[${name} ${unit}] ${chunk}`),
  });
  instances.push(instance);
  return { instance, id, name };
}

async function activeServers(haproxy: LocalInstance): Promise<string[]> {
  return (await readRuntime(`${haproxy.root}/run/haproxy/admin.sock`, 'backends'))
    .filter((s) => !s.maint)
    .map((s) => s.addr)
    .sort();
}

interface FrontendJson {
  ok: boolean;
  backend?: { name: string };
  haproxy?: { node?: string; name?: string };
}
async function frontendPage(frontend: LocalInstance): Promise<FrontendJson> {
  const res = await fetch(`http://${frontend.ip}:80/?format=json`, { signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as FrontendJson;
}

let backendA: Awaited<ReturnType<typeof boot>>;
let backendB: Awaited<ReturnType<typeof boot>>;
let backendC: Awaited<ReturnType<typeof boot>>;
let haproxy: LocalInstance;
let frontend: LocalInstance;

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 3, prefix });
  md = createMetadataServer({ port: 9169 });
  // Read-only default tokens and the identity login, made by the script an operator runs.
  roleTokens = await setupRoleTokens(cluster, md, 'demo-project');
  [backendA, backendB] = await Promise.all([boot('backend', 'backend-a1'), boot('backend', 'backend-b2')]);
  haproxy = (await boot('haproxy', 'haproxy-h1')).instance;
  frontend = (await boot('frontend', 'frontend-f1')).instance;
});

afterAll(async () => {
  // Every instance's output, for a failure's post-mortem (test-artifacts/ is git-ignored).
  await mkdir('test-artifacts', { recursive: true });
  await writeFile('test-artifacts/system-lb.log', logs.join(''));
  await Promise.all(instances.map((i) => i.kill().catch(() => undefined)));
  await md?.stop();
  await cluster?.stop();
});

describe('the load-balancing system, from the packer/ files', () => {
  it('registers every node with the identity contract', async () => {
    const node = await waitFor('backend-a1 registered with its service', async () => {
      const found = await cluster.servers[0]!.consul.catalog.node('backend-a1').catch(() => null);
      return found?.meta[nodeMetaKeys.instanceId] && found.services.length ? found : undefined;
    });
    expect(node.meta).toEqual({
      [nodeMetaKeys.instanceId]: backendA.id,
      [nodeMetaKeys.zone]: mainZone,
      [nodeMetaKeys.project]: 'demo-project',
      [nodeMetaKeys.group]: 'backend-mig',
      [nodeMetaKeys.role]: 'backend',
      'consul-network-segment': expect.any(String),
    });
    expect(node.services.map((s) => s.tags)).toEqual([[mainZone, 'backend']]);
    const agentOfA = (token: string) =>
      cluster.servers[0]!.consul.at({ host: backendA.instance.ip, port: CONSUL_HTTP_PORT, token });
    // Least privilege: a backend's token cannot pose as the HAProxy tier.
    await expect(
      agentOfA(await agentTokenOf(backendA.instance.root)).agent.registerService({
        name: services.haproxy.name,
        port: services.haproxy.port,
      }),
    ).rejects.toMatchObject({ status: 403, transient: false });
    // Without a token, a local caller only reads: it cannot put the node in maintenance.
    await expect(agentOfA('').agent.maintenance(true)).rejects.toMatchObject({ status: 403 });
  });

  it('serves the frontend page from both backends in turn, through HAProxy', async () => {
    const seen = new Set<string>();
    await waitFor(
      'both backends on the frontend page',
      async () => {
        const page = await frontendPage(frontend);
        if (page.ok && page.backend) seen.add(page.backend.name);
        return seen.size === 2;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    expect([...seen].sort()).toEqual(['backend-a1', 'backend-b2']);
    const page = await frontendPage(frontend);
    expect(page.haproxy?.node).toBe('haproxy-h1');
    // Found through dnsmasq and Consul DNS by its zone tag, not the fallback name.
    expect(page.haproxy?.name).toBe(`${mainZone}.haproxy-internal.service.consul`);
    const html = await (await fetch(`http://${frontend.ip}:80/`)).text();
    expect(html).toMatch(/Served by backend-(a1|b2)/);
  });

  it('drains a gracefully removed backend under load without a failed request', async () => {
    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 6, pauseMs: 10 });
    await sleep(1_000);
    const t0 = Date.now();
    const stopping = backendA.instance.shutdown();
    await waitFor(
      'backend-a1 out of HAProxy',
      async () => !(await activeServers(haproxy)).includes(backendA.instance.ip),
      {
        timeoutMs: 15_000,
        intervalMs: 50,
      },
    );
    const removalMs = Date.now() - t0;
    await stopping;
    await sleep(1_000);
    const result = await load.stop();
    console.log(
      `graceful removal: out of HAProxy in ${removalMs} ms; ${result.ok} ok, ${result.failed} failed`,
    );
    expect(removalMs).toBeLessThan(10_000);
    expect(result.reasons).toEqual({});
    expect(result.ok).toBeGreaterThan(200);
  });

  it('sends traffic to a new backend', async () => {
    backendC = await boot('backend', 'backend-c3');
    await waitFor(
      'backend-c3 answering',
      async () => (await frontendPage(frontend)).backend?.name === 'backend-c3',
      {
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );
    expect(await activeServers(haproxy)).toEqual([backendB.instance.ip, backendC.instance.ip].sort());
  });

  it('fails no GET when a backend is killed abruptly under load', async () => {
    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 6, pauseMs: 10 });
    await sleep(1_000);
    await backendB.instance.kill();
    await waitFor(
      'backend-b2 out of HAProxy',
      async () => !(await activeServers(haproxy)).includes(backendB.instance.ip),
      {
        timeoutMs: 30_000,
        intervalMs: 100,
      },
    );
    await sleep(1_000);
    const result = await load.stop();
    console.log(`abrupt kill: ${result.ok} ok, ${result.failed} failed`);
    expect(result.reasons).toEqual({});
    expect(result.servedBy['backend-c3']).toBeGreaterThan(0);
  });

  it('keeps other zones as backup, used only when the zone has no healthy backend', async () => {
    const backendD = await boot('backend', 'backend-d4', 'us-central1-b');
    await waitFor('backend-d4 as a backup server', async () =>
      (await activeServers(haproxy)).includes(backendD.instance.ip),
    );
    expect(await servedBy(40)).toEqual({ 'backend-c3': 40 });
    await backendC.instance.shutdown();
    await waitFor(
      'backend-c3 out of HAProxy',
      async () => !(await activeServers(haproxy)).includes(backendC.instance.ip),
    );
    expect(await servedBy(40)).toEqual({ 'backend-d4': 40 });
  });

  it('answers a clear 502 page, and keeps serving, when the HAProxy tier is gone', async () => {
    await haproxy.kill();
    const res = await fetch(`http://${frontend.ip}:80/`);
    expect(res.status).toBe(502);
    expect(await res.text()).toContain('Backend tier unreachable');
    expect((await fetch(`http://${frontend.ip}:80/healthz`)).status).toBe(200);
  });
});

async function servedBy(count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const res = await fetch(`http://${haproxy.ip}:8080/`, { signal: AbortSignal.timeout(5_000) });
    const name = ((await res.json()) as { instance: { name: string } }).instance.name;
    seen[name] = (seen[name] ?? 0) + 1;
  }
  return seen;
}
