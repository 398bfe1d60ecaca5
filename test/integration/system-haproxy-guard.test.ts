/**
 * The HAProxy tier from packer/haproxy against hostile Consul data and the KV drain list, with real
 * Consul (ACLs, the operator's role tokens), consul-template, haproxy-sync and HAProxy:
 * - registrations whose address or node name could inject configuration or runtime-API commands
 *   never reach HAProxy; a good registration next to them still serves;
 * - gce-ilb-orchestrator/draining/<node> drains that node's server only when its instance id matches,
 *   and the server is ready again when the key goes;
 * - /healthz (Consul's check and the autohealer's) fails when no backend server is usable;
 * - a render that `haproxy -c` rejects is never loaded, and is logged at ERROR.
 */
import { createServer, type Server } from 'node:http';
import { readFile, rename, writeFile } from 'node:fs/promises';

import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { launchInstance, type LocalInstance } from '../../infra-scripts/local/instance';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { drainingKeyPrefix } from '../../services/haproxy-sync/config';
import { haproxyCommand, readRuntime } from '../../services/haproxy-sync/runtime';
import { randomLoopbackPrefix, sleep, startConsulCluster, waitFor, type ConsulCluster } from '../harness';
import { nodeMetaKeys, services } from '../../shared/contract';
import { roleTokens } from './system-support';

jest.setTimeout(180_000);

const prefix = randomLoopbackPrefix();
const zone = 'europe-west4-b';
let cluster: ConsulCluster;
let md: MetadataServer;
let haproxy: LocalInstance;
const servers: Server[] = [];
const logs: string[] = [];

const good = {
  g1: { node: 'backend-g1', ip: `${prefix}.111`, id: '7000000000000000001' },
  g2: { node: 'backend-g2', ip: `${prefix}.112`, id: '7000000000000000002' },
};
/** Registrations that would inject a server, a keyword or a runtime-API command if rendered raw. */
const hostile = [
  { node: 'backend-h1', address: `${prefix}.121:8080\n    server evil ${prefix}.199:8080 #` },
  { node: 'backend-h2', address: `${prefix}.122;disable frontend internal` },
  { node: 'backend-h3', address: `${prefix}.123 weight 0` },
  { node: `backend-h4\n    server evil2 ${prefix}.199:8080 #`, address: `${prefix}.124` },
  { node: 'backend h5;x', address: `${prefix}.125` },
  { node: 'backend-h6', address: 'evil.example.com' },
];

async function standIn(name: string, ip: string): Promise<void> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ instance: { name } }));
  });
  await new Promise<void>((resolve) => server.listen(8080, ip, resolve));
  servers.push(server);
}

const consul = () => cluster.servers[0]!.consul;
const setDraining = (node: string, value: { instanceId: string; since: number }) =>
  consul().kv.set(`${drainingKeyPrefix}${node}`, JSON.stringify(value));
const clearDraining = (node: string) => consul().kv.delete(`${drainingKeyPrefix}${node}`);
const deregisterNode = (node: string) => consul().catalog.deregister({ node });

async function register(node: string, address: string, id?: string): Promise<void> {
  await consul().catalog.register({
    node,
    address,
    nodeMeta: id ? { [nodeMetaKeys.instanceId]: id } : {},
    service: {
      service: services.backend.name,
      port: services.backend.port,
      address,
      tags: [zone, services.backend.name],
    },
    check: { checkId: 'alive', name: 'alive', status: 'passing', serviceId: services.backend.name },
  });
}

const runtime = () => readRuntime(`${haproxy.root}/run/haproxy/admin.sock`, 'backends');
const slotOf = async (ip: string) => (await runtime()).find((s) => s.addr === ip && !s.maint);
const rendered = () => readFile(`${haproxy.root}/etc/haproxy/haproxy.cfg`, 'utf8');
const workerPid = async () =>
  /^Pid: (\d+)/m.exec(await haproxyCommand(`${haproxy.root}/run/haproxy/admin.sock`, 'show info'))?.[1];
const health = async () =>
  (await fetch(`http://${haproxy.ip}:8080/healthz`, { signal: AbortSignal.timeout(2_000) })).status;

async function servedBy(count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const res = await fetch(`http://${haproxy.ip}:8080/`, { signal: AbortSignal.timeout(5_000) });
    const name = ((await res.json()) as { instance: { name: string } }).instance.name;
    seen[name] = (seen[name] ?? 0) + 1;
  }
  return seen;
}

beforeAll(async () => {
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  const tokens = await roleTokens(cluster, md, 'guard');
  await standIn(good.g1.node, good.g1.ip);
  await standIn(good.g2.node, good.g2.ip);
  const ip = `${prefix}.20`;
  const metadataHost = await md.addInstance({
    id: '1234568',
    name: 'haproxy-g1',
    zone,
    ip,
    projectId: 'guard',
    projectNumber: '6',
    attributes: {
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'consul-default-token': tokens['haproxy-default'],
      // The stand-ins are catalog entries, not gossip members (test/attack/routing.test.ts has members).
      'ilb-route-members-only': 'false',
    },
  });
  haproxy = await launchInstance({
    role: 'haproxy',
    ip,
    metadataHost,
    onOutput: (unit, chunk) => logs.push(`[${unit}] ${chunk}`),
  });
});

afterAll(async () => {
  await haproxy?.kill();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await md?.stop();
  await cluster?.stop();
});

describe('the HAProxy tier against hostile Consul data', () => {
  it('never renders nor applies a hostile registration; a good one next to them serves', async () => {
    for (const h of hostile) await register(h.node, h.address);
    await register(good.g1.node, good.g1.ip, good.g1.id);
    await waitFor('backend-g1 live in HAProxy', async () => (await slotOf(good.g1.ip)) !== undefined, {
      timeoutMs: 60_000,
    });
    const cfg = await waitFor('every hostile registration skipped in the render', async () => {
      const text = await rendered();
      return (text.match(/# skipped: invalid-registration/g) ?? []).length === hostile.length
        ? text
        : undefined;
    });
    // Each one a single comment line; no server line but the good one and the unused slots.
    const serverLines = cfg.split('\n').filter((l) => /^\s*server\s/.test(l));
    expect(serverLines.filter((l) => !/127\.0\.0\.1:1 (backup )?disabled$/.test(l))).toEqual([
      `    server z1 ${good.g1.ip}:8080 # node=backend-g1 id=${good.g1.id}`,
    ]);
    expect(cfg).not.toMatch(/^\s*(server evil|weight|disable frontend)/m);
    const applied = await readFile(`${haproxy.root}/etc/haproxy/haproxy.cfg.applied`, 'utf8');
    // No server line for it (the quoted `# skipped` comment may name it).
    expect(applied.split('\n').filter((l) => /^\s*server\s/.test(l) && l.includes(`${prefix}.199:`))).toEqual(
      [],
    );
    // The running HAProxy: only the good server; its frontend still enabled and serving.
    const live = (await runtime()).filter((s) => !s.maint).map((s) => s.addr);
    expect(live).toEqual([good.g1.ip]);
    expect(await servedBy(10)).toEqual({ 'backend-g1': 10 });
    // The stats page listens on the agent's client address (the sandbox's metrics agent and status
    // page read it there; on the image it is 127.0.0.1).
    const stats = await fetch(`http://${haproxy.ip}:8404/stats;csv`);
    expect(stats.status).toBe(200);
    expect(await stats.text()).toMatch(/^backends,z1,/m);
    // haproxy-sync says what it left out.
    await waitFor('haproxy-sync to report the skipped registrations', async () =>
      logs.some((l) => l.includes('backend registrations left out of HAProxy')),
    );
  });

  it('drains a node on the drain list only when its instance id matches, and restores it', async () => {
    await register(good.g2.node, good.g2.ip, good.g2.id);
    await waitFor('backend-g2 live', async () => (await slotOf(good.g2.ip)) !== undefined);

    const t0 = Date.now();
    await setDraining(good.g1.node, {
      instanceId: good.g1.id,
      since: Date.now(),
    });
    await waitFor('backend-g1 in DRAIN', async () => (await slotOf(good.g1.ip))?.drain === true, {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    console.log(`drain key to DRAIN in HAProxy: ${Date.now() - t0} ms`);
    expect(await servedBy(10)).toEqual({ 'backend-g2': 10 });

    // A key for a same-name replacement (another instance id) drains nothing.
    await setDraining(good.g2.node, {
      instanceId: '7000000000000000999',
      since: Date.now(),
    });
    await waitFor('the foreign drain key rendered', async () =>
      (await rendered()).includes('drain-id=7000000000000000999'),
    );
    await sleep(3_000);
    expect((await slotOf(good.g2.ip))?.drain).toBe(false);

    // A reload (more servers than slots) starts a worker from the config alone: the drain follows.
    const pid = await workerPid();
    const extra = Array.from({ length: 8 }, (_, i) => ({
      node: `backend-x${i + 1}`,
      ip: `${prefix}.${131 + i}`,
    }));
    for (const x of extra) {
      await standIn(x.node, x.ip);
      await register(x.node, x.ip, String(8000 + extra.indexOf(x)));
    }
    await waitFor(
      'a new worker with 16 zone slots',
      async () =>
        (await workerPid()) !== pid && (await runtime()).filter((s) => s.pool === 'z').length === 16,
      { timeoutMs: 30_000 },
    );
    await waitFor(
      'backend-g1 in DRAIN in the new worker',
      async () => (await slotOf(good.g1.ip))?.drain === true,
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    for (const x of extra) await deregisterNode(x.node);
    await waitFor('the extra backends gone', async () => {
      const live = (await runtime()).filter((s) => !s.maint).map((s) => s.addr);
      return live.length === 2;
    });
    await waitFor('backend-g1 still in DRAIN', async () => (await slotOf(good.g1.ip))?.drain === true);

    await clearDraining(good.g1.node);
    await waitFor('backend-g1 READY again', async () => (await slotOf(good.g1.ip))?.drain === false, {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    await clearDraining(good.g2.node);
    const seen = await servedBy(20);
    expect(Object.keys(seen).sort()).toEqual(['backend-g1', 'backend-g2']);
  });

  it('fails /healthz while no backend server is usable', async () => {
    expect(await health()).toBe(200);
    await deregisterNode(good.g1.node);
    await deregisterNode(good.g2.node);
    // The hostile registrations are still in Consul: none of them counts as a server.
    await waitFor('/healthz failing', async () => (await health()) === 503, { timeoutMs: 20_000 });
    await register(good.g1.node, good.g1.ip, good.g1.id);
    await waitFor('/healthz passing again', async () => (await health()) === 200, { timeoutMs: 20_000 });
  });

  it('keeps the running config when haproxy -c rejects a render, logging at ERROR once', async () => {
    const cfgPath = `${haproxy.root}/etc/haproxy/haproxy.cfg`;
    const good = await rendered();
    const applied = await readFile(`${cfgPath}.applied`, 'utf8');
    const pid = await workerPid();
    const refusals = () =>
      logs
        .filter((l) => l.startsWith('[haproxy-sync] '))
        .map((l) => l.slice('[haproxy-sync] '.length))
        .join('')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { severity: string; message: string })
        .filter(
          (l) =>
            l.severity === 'ERROR' &&
            l.message === 'haproxy -c rejected the rendered config; HAProxy keeps running the previous one',
        ).length;
    const before = refusals();
    // Valid server lines, a structural change HAProxy refuses; renamed into place as consul-template does.
    await writeFile(`${cfgPath}.tmp`, good.replace('timeout connect 1s', 'timeout connect banana'));
    await rename(`${cfgPath}.tmp`, cfgPath);
    try {
      await waitFor('haproxy-sync to refuse the render', async () => refusals() > before, {
        timeoutMs: 10_000,
      });
      // Not retried nor logged again by the resyncs that follow (every 2 s).
      await sleep(4_500);
      expect(refusals()).toBe(before + 1);
      expect(await readFile(`${cfgPath}.applied`, 'utf8')).toBe(applied);
      expect(await workerPid()).toBe(pid);
      expect(await servedBy(5)).toEqual({ 'backend-g1': 5 });
    } finally {
      await writeFile(cfgPath, good);
    }
  });
});
