/**
 * healthSweep at scale: one sweep over 1,000 and 10,000 Consul nodes (real catalog registrations
 * with a check each, in a real Consul with ACLs, read with the function's own token) against as
 * many managed instances in 50 groups. Prints wall time, API calls by service and peak memory.
 *
 * The Compute emulator runs a process (or a launcher) per instance and has 253 addresses, so the
 * groups' pages are served by a small local stub speaking the same REST shapes (paged
 * listManagedInstances, instanceGroupManagers.get, instances.get answering 404, Monitoring's
 * timeSeries.create), called through the real clients. 1 % of the nodes are stale (their ids are in
 * no group): the sweep looks up 50 of them, counts the rest, and deletes within its token bucket.
 * Run after `npm run build`: node dist/bench/health-sweep.bench.js [--smoke]
 * `--smoke`: 200 nodes only (the check in test/bench/). The last line is the figures as JSON
 * (bench/lib/figures.ts).
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../shared/config';
import type { TxnOp } from '../shared/consul';
import { nodeMetaKeys, services } from '../shared/contract';
import { parseHealthSweepConfig } from '../shared/health-sweep/config';
import type { SweepResult } from '../shared/health-sweep/sweep';
import { healthSweepFromConfig } from '../shared/health-sweep/wire';
import { createLogger } from '../shared/logging';
import {
  repoRoot,
  startConsulCluster,
  stopAllProcesses,
  type ConsulAgent,
} from '../infra-scripts/local/launch';
import { runNode } from './lib/child';
import { printFigures } from './lib/figures';

const SIZES = process.argv.includes('--smoke') ? [200] : [1000, 10_000];
const GROUPS = 50;
const STALE_FRACTION = 0.01;
const project = 'ilb-bench';
const zones = ['us-central1-a', 'us-central1-b'];

const say = (line: string) => process.stdout.write(`${line}\n`);

interface Instance {
  name: string;
  id: string;
  zone: string;
  group: string;
}

const groupName = (g: number) => `backend-${String(g).padStart(2, '0')}`;
const zoneOf = (g: number) => zones[g % zones.length] as string;

function world(size: number): { members: Map<string, Instance[]>; stale: Instance[] } {
  const members = new Map<string, Instance[]>();
  for (let i = 0; i < size; i++) {
    const g = i % GROUPS;
    const inst: Instance = {
      name: `${groupName(g)}-${String(i).padStart(5, '0')}`,
      id: String(5_000_000_000_000_000_000n + BigInt(i)),
      zone: zoneOf(g),
      group: groupName(g),
    };
    const list = members.get(inst.group) ?? [];
    list.push(inst);
    members.set(inst.group, list);
  }
  const stale: Instance[] = [];
  for (let i = 0; i < Math.round(size * STALE_FRACTION); i++) {
    const g = i % GROUPS;
    stale.push({
      name: `${groupName(g)}-gone-${i}`,
      id: String(6_000_000_000_000_000_000n + BigInt(i)),
      zone: zoneOf(g),
      group: groupName(g),
    });
  }
  return { members, stale };
}

/** Google's REST shapes for what the sweep reads and writes; 404 for anything else. */
async function startStub(members: Map<string, Instance[]>) {
  const requests = { pages: 0, gets: 0, lookups: 0, metrics: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const send = (status: number, body: unknown) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    const notFound = () =>
      send(404, {
        error: {
          code: 404,
          message: 'not found',
          errors: [{ message: 'not found', domain: 'global', reason: 'notFound' }],
        },
      });
    req.resume();
    req.on('end', () => {
      const igm =
        /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/instanceGroupManagers\/([^/]+)(\/listManagedInstances)?$/.exec(
          url.pathname,
        );
      if (igm && igm[4] && req.method === 'POST') {
        requests.pages++;
        const all = members.get(igm[3] ?? '') ?? [];
        const max = Math.min(500, Number(url.searchParams.get('maxResults') ?? 500));
        const start = Number(url.searchParams.get('pageToken') ?? 0);
        const page = all.slice(start, start + max).map((m) => ({
          id: m.id,
          instance: `https://www.googleapis.com/compute/v1/projects/${project}/zones/${m.zone}/instances/${m.name}`,
          instanceStatus: 'RUNNING',
          currentAction: 'NONE',
        }));
        send(200, {
          managedInstances: page,
          ...(start + max < all.length ? { nextPageToken: String(start + max) } : {}),
        });
        return;
      }
      if (igm && req.method === 'GET') {
        requests.gets++;
        send(200, { kind: 'compute#instanceGroupManager', name: igm[3], status: { isStable: true } });
        return;
      }
      if (/\/instances\/[^/]+$/.test(url.pathname) && req.method === 'GET') {
        requests.lookups++;
        notFound();
        return;
      }
      if (/^\/v3\/projects\/[^/]+\/timeSeries$/.test(url.pathname) && req.method === 'POST') {
        requests.metrics++;
        send(200, {});
        return;
      }
      notFound();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Catalog nodes with identity metadata and a passing service check, 21 nodes (63 ops) per transaction. */
async function register(server: ConsulAgent, nodes: Instance[]): Promise<void> {
  for (let start = 0; start < nodes.length; start += 21) {
    const ops: TxnOp[] = [];
    for (const [k, n] of nodes.slice(start, start + 21).entries()) {
      const i = start + k;
      ops.push({
        Node: {
          Verb: 'set',
          Node: {
            Node: n.name,
            Address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
            Meta: {
              [nodeMetaKeys.instanceId]: n.id,
              [nodeMetaKeys.zone]: n.zone,
              [nodeMetaKeys.project]: project,
              [nodeMetaKeys.group]: n.group,
              [nodeMetaKeys.role]: 'backend',
            },
          },
        },
      });
      ops.push({
        Service: {
          Verb: 'set',
          Node: n.name,
          Service: { ID: services.backend.name, Service: services.backend.name, Port: services.backend.port },
        },
      });
      ops.push({
        Check: {
          Verb: 'set',
          Check: {
            Node: n.name,
            CheckID: 'service:backend',
            Name: 'backend',
            Status: 'passing',
            ServiceID: services.backend.name,
          },
        },
      });
    }
    const answer = await server.consul.txn(ops);
    if (!answer.ok) throw new Error(`registering nodes: ${answer.errors.map((e) => e.What).join('; ')}`);
  }
}

/** Runs `work` while sampling memory every 5 ms; returns its result and the peaks. */
async function measured<T>(work: () => Promise<T>) {
  let rss = process.memoryUsage().rss;
  let heap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 5);
  const t0 = performance.now();
  try {
    const result = await work();
    const m = process.memoryUsage();
    return {
      result,
      ms: performance.now() - t0,
      rss: Math.max(rss, m.rss),
      heap: Math.max(heap, m.heapUsed),
    };
  } finally {
    clearInterval(timer);
  }
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

interface Row {
  size: number;
  /** Nodes registered that no group holds. */
  stale: number;
  /** What the stub served to this size's sweeps. */
  served: { pages: number; gets: number; lookups: number; metrics: number };
  run: string;
  ms: number;
  calls: SweepResult['apiCalls'];
  rss: number;
  heap: number;
  deleted: number;
  reportOnly: string;
}

/** What the sweep process reports of each sweep. */
type SweepRow = Omit<Row, 'size' | 'stale' | 'served'>;

async function runChild(env: Record<string, string>): Promise<string> {
  const child = await runNode([__filename, 'sweep'], { env: { ...process.env, ...env } });
  if (child.code !== 0) throw new Error(`sweep process: ${child.stderr}`);
  return child.stdout;
}

async function benchSize(size: number): Promise<Row[]> {
  const { members, stale } = world(size);
  const stub = await startStub(members);
  const cluster = await startConsulCluster({ servers: 1 });
  try {
    const server = cluster.servers[0] as ConsulAgent;
    const rules = readFileSync(path.join(repoRoot(), 'infra-scripts/acl/health-sweep.hcl'), 'utf8');
    await server.consul.acl.createPolicy('health-sweep', rules);
    const token = await server.consul.acl.createToken({ policies: ['health-sweep'] });
    // As deployed: force-leave on its own token (the catalog-only nodes answer not-a-member).
    const forceLeave = readFileSync(path.join(repoRoot(), 'infra-scripts/acl/force-leave.hcl'), 'utf8');
    await server.consul.acl.createPolicy('force-leave', forceLeave);
    const forceLeaveToken = await server.consul.acl.createToken({ policies: ['force-leave'] });
    const t0 = performance.now();
    await register(server, [...[...members.values()].flat(), ...stale]);
    say(
      `  ${size} instances in ${GROUPS} groups, ${size + stale.length} nodes registered in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    // The sweeps run in a fresh process, so its peak memory is the function's alone.
    // Asynchronously: this process serves the stub the child calls.
    const child = await runChild({
      BENCH_CONSUL: server.httpAddr,
      BENCH_TOKEN: token,
      BENCH_FORCE_LEAVE_TOKEN: forceLeaveToken,
      BENCH_COMPUTE: stub.url,
    });
    const rows = (JSON.parse(child) as SweepRow[]).map((r) => ({
      ...r,
      size,
      stale: stale.length,
      served: stub.requests,
    }));
    say(`  list pages served: ${stub.requests.pages}, lookups answered: ${stub.requests.lookups}`);
    return rows;
  } finally {
    await cluster.stop();
    await stub.stop();
  }
}

/** In the child process: two sweeps with the function's wiring, measured. */
async function sweepProcess(): Promise<void> {
  const env = loadConfig({
    CONSUL_HTTP_ADDR: process.env.BENCH_CONSUL,
    CONSUL_HTTP_TOKEN: process.env.BENCH_TOKEN,
    CONSUL_FORCE_LEAVE_TOKEN: process.env.BENCH_FORCE_LEAVE_TOKEN,
    COMPUTE_API_ENDPOINT: process.env.BENCH_COMPUTE,
    ORCHESTRATOR_CONSUL_TIMEOUT_MS: '10000',
  });
  const config = parseHealthSweepConfig({
    groups: Array.from({ length: GROUPS }, (_, g) => ({
      project,
      zone: zoneOf(g),
      name: groupName(g),
      role: 'backend',
    })),
    // The bench's nodes are catalog entries, not agents: the identity check would remove them.
    identity: { removeUnproven: false },
  });
  const sweep = healthSweepFromConfig(env, config, {
    logger: createLogger({
      name: 'healthSweep',
      destination: new Writable({ write: (_c, _e, done) => done() }),
    }),
  });
  const rows: SweepRow[] = [];
  for (const run of ['first (cold clients)', 'second']) {
    const m = await measured(() => sweep.run({ dryRun: false }));
    if (m.result.status !== 'completed') throw new Error(`sweep ${m.result.status}`);
    rows.push({
      run,
      ms: m.ms,
      calls: m.result.apiCalls,
      rss: m.rss,
      heap: m.heap,
      deleted: m.result.done.filter((d) => d.action.type === 'deregister' && d.outcome === 'done').length,
      reportOnly: m.result.report?.reportOnly.join(',') || '-',
    });
  }
  await sweep.close();
  process.stdout.write(JSON.stringify(rows));
}

async function main(): Promise<void> {
  say(
    `healthSweep: one sweep against N nodes and N managed instances in ${GROUPS} groups (${STALE_FRACTION * 100} % stale nodes)`,
  );
  const rows: Row[] = [];
  for (const size of SIZES) rows.push(...(await benchSize(size)));
  say(
    '\n| nodes | sweep | wall time | compute calls | consul calls | monitoring calls | deleted | peak RSS | peak heap | report-only |',
  );
  say('|---:|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    say(
      `| ${r.size} | ${r.run} | ${(r.ms / 1000).toFixed(2)} s | ${r.calls.compute} | ${r.calls.consul} | ${r.calls.monitoring} | ${r.deleted} | ${mb(r.rss)} | ${mb(r.heap)} | ${r.reportOnly} |`,
    );
  }
  printFigures({ groups: GROUPS, rows });
}

(process.argv[2] === 'sweep' ? sweepProcess() : main())
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => void stopAllProcesses());
