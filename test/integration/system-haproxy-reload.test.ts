/**
 * haproxy-sync's two paths against real consul-template and HAProxy (packer/haproxy files through
 * the instance launcher): servers that fit the declared slots change live; growing past them (a
 * structural change) is a master-worker reload. Neither fails a request under load. And the L7
 * retry policy: idempotent requests are replayed on another server, others never.
 */
import { createServer, type Server } from 'node:http';

import { startLoad } from '../../bench/lib/load';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { launchInstance, type LocalInstance } from '../../infra-scripts/local/instance';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { haproxyCommand, readRuntime } from '../../services/haproxy-sync/runtime';
import { randomLoopbackPrefix, sleep, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { services } from '../../shared/contract';
import { roleTokens } from './system-support';

const backend = services.backend;

jest.setTimeout(180_000);

const prefix = randomLoopbackPrefix();
const zone = 'europe-west4-a';
let cluster: ConsulCluster;
let md: MetadataServer;
let haproxy: LocalInstance;
const backends: Server[] = [];
const attempts = new Map<string, number>();

/** A stand-in backend: answers like the real app, registered in the catalog as healthy. */
async function addBackend(n: number): Promise<void> {
  const ip = `${prefix}.${100 + n}`;
  const name = `ext-backend-${n}`;
  const server = createServer((req, res) => {
    // `/die?id=X`: the first attempt of X dies mid-request, as a backend that crashes would.
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const id = url.searchParams.get('id');
    if (url.pathname === '/die' && id) {
      const seen = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, seen);
      if (seen === 1) {
        req.socket.destroy();
        return;
      }
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ instance: { name } }));
  });
  await new Promise<void>((resolve) => server.listen(backend.port, ip, resolve));
  backends.push(server);
  await cluster.servers[0]!.consul.catalog.register({
    node: name,
    address: ip,
    service: { service: backend.name, port: backend.port, address: ip, tags: [zone, 'backend'] },
    check: { checkId: `${name}-alive`, name: 'alive', status: 'passing', serviceId: backend.name },
  });
}

const runtime = () => readRuntime(`${haproxy.root}/run/haproxy/admin.sock`, 'backends');

const masterPid = () => haproxy.processes.get('haproxy')!.pid;
/** PIDs of the current workers, from the master CLI's `show proc`. */
async function workers(): Promise<string[]> {
  const table = await haproxyCommand(`${haproxy.root}/run/haproxy/master.sock`, 'show proc');
  return table
    .split('\n')
    .filter((line) => /\sworker\s/.test(line))
    .map((line) => line.trim().split(/\s+/)[0]!);
}

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 3, prefix });
  const tokens = await roleTokens(cluster);
  md = createMetadataServer({ port: 0 });
  for (let n = 1; n <= 2; n++) await addBackend(n);
  const ip = `${prefix}.20`;
  const metadataHost = await md.addInstance({
    id: '1234567',
    name: 'haproxy-r1',
    zone,
    ip,
    projectId: 'reload',
    projectNumber: '5',
    attributes: {
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'consul-agent-token': tokens.haproxy,
      // consul-template reads with it: the backends and the drain list.
      'consul-default-token': tokens['haproxy-default'],
    },
  });
  haproxy = await launchInstance({ role: 'haproxy', ip, metadataHost });
  await waitFor('both backends live', async () => (await runtime()).filter((s) => !s.maint).length === 2, {
    timeoutMs: 60_000,
  });
});

afterAll(async () => {
  await haproxy?.kill();
  await Promise.all(backends.map((s) => new Promise((r) => s.close(r))));
  await md?.stop();
  await cluster?.stop();
});

describe('HAProxy from packer/haproxy with haproxy-sync', () => {
  it('fills declared slots live: same master, same worker, no failed request', async () => {
    const before = await workers();
    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 4, pauseMs: 5 });
    for (let n = 3; n <= 8; n++) await addBackend(n);
    await waitFor('8 backends live', async () => (await runtime()).filter((s) => !s.maint).length === 8, {
      timeoutMs: 30_000,
    });
    await sleep(500);
    const result = await load.stop();
    expect(result.reasons).toEqual({});
    expect(Object.keys(result.servedBy).length).toBe(8);
    expect(before).toHaveLength(1);
    expect(await workers()).toEqual(before);
  });

  it('grows past the slots with a hitless reload', async () => {
    const pid = masterPid();
    const before = await workers();
    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 4, pauseMs: 5 });
    await addBackend(9);
    await waitFor('16 slots with 9 backends live', async () => {
      const slots = (await runtime()).filter((s) => s.pool === 'z');
      return slots.length === 16 && slots.filter((s) => !s.maint).length === 9;
    });
    await sleep(1_000);
    const result = await load.stop();
    expect(result.reasons).toEqual({});
    expect(result.servedBy['ext-backend-9']).toBeGreaterThan(0);
    // Same master process, a new worker.
    expect(masterPid()).toBe(pid);
    // The old worker finishes its connections, then leaves.
    const after = await waitFor('only the new worker', async () => {
      const current = await workers();
      return current.length === 1 ? current : undefined;
    });
    expect(after).not.toEqual(before);
  });

  it('retries a GET on another server when a backend dies mid-request, never a POST', async () => {
    const get = await fetch(`http://${haproxy.ip}:8080/die?id=get-1`);
    expect(get.status).toBe(200);
    expect(attempts.get('get-1')).toBe(2);
    const post = await fetch(`http://${haproxy.ip}:8080/die?id=post-1`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(502);
    expect(attempts.get('post-1')).toBe(1);
  });
});
