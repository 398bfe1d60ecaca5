/**
 * haproxy-sync's two paths against real consul-template and HAProxy (packer/haproxy files through
 * the instance launcher): servers that fit the declared slots change live; growing past them (a
 * structural change) is a master-worker reload. Neither fails a request under load. The daemon
 * coalesces a flapping catalog (no reload storm) and, restarted, catches up with what it missed.
 * And the L7 retry policy: idempotent requests are replayed on another server, others never.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';

import { startLoad } from '../../infra-scripts/local/load';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { launchInstance, type LocalInstance } from '../../infra-scripts/local/instance';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { haproxyCommand, readRuntime } from '../../services/haproxy-sync/runtime';
import { randomLoopbackPrefix, sleep, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { nodeMetaKeys, services } from '../../shared/contract';
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
const logs: string[] = [];
/** haproxy-sync's log lines with this message so far. */
const syncLogs = (message: string) =>
  logs
    .filter((l) => l.startsWith('[haproxy-sync] '))
    .map((l) => l.slice('[haproxy-sync] '.length))
    .join('')
    .split('\n')
    .filter((l) => l.includes(`"message":"${message}"`));

/** A stand-in backend: answers like the real app, registered in the catalog as healthy. */
async function addBackend(n: number): Promise<void> {
  const ip = `${prefix}.${100 + n}`;
  const name = `ext-backend-${n}`;
  if (backends[n - 1]) return register(name, ip);
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
  await register(name, ip);
}

async function register(name: string, ip: string): Promise<void> {
  await cluster.servers[0]!.consul.catalog.register({
    node: name,
    address: ip,
    // HAProxy routes only to a node with an instance id (packer/haproxy/files/haproxy.cfg.ctmpl).
    nodeMeta: {
      [nodeMetaKeys.instanceId]: `9${ip
        .split('.')
        .map((p) => p.padStart(3, '0'))
        .join('')}`,
    },
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
  md = createMetadataServer({ port: 0 });
  const tokens = await roleTokens(cluster, md, 'reload');
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
      // consul-template reads with it: the backends and the drain list.
      'consul-default-token': tokens['haproxy-default'],
      // The stand-ins are catalog entries, not gossip members.
      'ilb-route-members-only': 'false',
    },
  });
  haproxy = await launchInstance({
    role: 'haproxy',
    ip,
    metadataHost,
    onOutput: (unit, chunk) => logs.push(`[${unit}] ${chunk}`),
  });
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

  it('coalesces a flapping catalog: no reload when it shrinks back under a step, few applies', async () => {
    const before = await workers();
    const reloads = syncLogs('hitless reload requested').length;
    const applies = syncLogs('servers updated live').length;
    const load = startLoad({ host: haproxy.ip, port: 8080, concurrency: 4, pauseMs: 5 });
    // Backend 9 (the one past the first step of 8) leaves and comes back 10 times, 50 ms apart.
    for (let i = 0; i < 10; i++) {
      await cluster.servers[0]!.consul.catalog.deregister({ node: 'ext-backend-9' });
      await sleep(50);
      await addBackend(9);
      await sleep(50);
    }
    await waitFor('9 backends live', async () => (await runtime()).filter((s) => !s.maint).length === 9);
    await sleep(2_500);
    const result = await load.stop();
    expect(result.reasons).toEqual({});
    expect(syncLogs('hitless reload requested')).toHaveLength(reloads);
    expect(await workers()).toEqual(before);
    // 20 catalog changes: consul-template's short wait and the daemon's coalescing fold most of them.
    const made = syncLogs('servers updated live').length - applies;
    expect(made).toBeLessThanOrEqual(20);
    console.log(`20 catalog changes in 1 s: ${made} live applies, 0 reloads`);
  });

  it('applies a change in well under a second, and catches up after its own restart', async () => {
    const t0 = Date.now();
    await cluster.servers[0]!.consul.catalog.deregister({ node: 'ext-backend-1' });
    const gone = () => runtime().then((r) => !r.some((s) => s.addr === `${prefix}.101` && !s.maint));
    await waitFor('ext-backend-1 out of HAProxy', gone, { intervalMs: 10 });
    const took = Date.now() - t0;
    console.log(`catalog change to HAProxy runtime: ${took} ms`);
    expect(took).toBeLessThan(1_500);

    // Down while the catalog changes: nothing applies; started again, it catches up at once.
    const daemon = haproxy.processes.get('haproxy-sync')!;
    await daemon.stop('SIGTERM');
    await addBackend(1);
    await waitFor('the render names ext-backend-1', async () =>
      (await readFile(`${haproxy.root}/etc/haproxy/haproxy.cfg`, 'utf8')).includes('node=ext-backend-1'),
    );
    await sleep(500);
    expect(await gone()).toBe(true);
    await haproxy.restart('haproxy-sync');
    await waitFor('ext-backend-1 back in HAProxy', async () => !(await gone()), { timeoutMs: 10_000 });
    // Once idle, the applied file (what a restarted HAProxy loads) follows the live servers too.
    const cfg = `${haproxy.root}/etc/haproxy/haproxy.cfg`;
    await waitFor(
      'the applied config to equal the render',
      async () => (await readFile(`${cfg}.applied`, 'utf8')) === (await readFile(cfg, 'utf8')),
      { timeoutMs: 10_000 },
    );
    expect(await readFile(`${cfg}.applied`, 'utf8')).toContain('node=ext-backend-1');
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
