/**
 * Backend membership changes under steady GET and POST load, side by side in one run on the same
 * Consul cluster and backends: (a) the original tutorial (consul-template `-wait=1s:4s` renders,
 * then HAProxy is restarted) and (b) ours (packer/haproxy: consul-template + the haproxy-sync daemon
 * over the runtime API). Both HAProxies watch the same catalog and take the same load at once.
 *   npm run build && node dist/bench/haproxy-membership.bench.js [--changes 20] [--gap-ms 2000]
 *   [--scale 10] [--kills 5] [--rate 400] [--post-rate 100] [--smoke]
 * 1. Consul change → HAProxy effect, `--changes` backend maintenance toggles: until the server state
 *    in HAProxy's runtime API changed, and until the requests follow (first/last answer from it).
 * 2. Requests failed (GETs and POSTs apart) during `--scale` scale-outs (a backend instance boots)
 *    and as many scale-ins (its shutdown script: maintenance, drain window, leave, stop).
 * 3. Instance terminated (SIGKILL, no shutdown script) → HAProxy stops routing to it: Consul's
 *    failure detection, then each way's own path (HAProxy's health checks count for both).
 * Everything runs on 127.x.y.z addresses; the loads keep a steady rate, bounded by the run's length.
 * `--smoke`: 2 changes, 1 scale-out and -in, 1 kill, low rates (the check in test/bench/). The last
 * line is the figures as JSON (bench/lib/figures.ts).
 */
import { randomInt } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';

import { launchInstance, type LocalInstance, type Role } from '../infra-scripts/local/instance';
import {
  CONSUL_HTTP_PORT,
  randomLoopbackPrefix,
  sleep,
  startConsulCluster,
  waitFor,
  type ConsulCluster,
} from '../infra-scripts/local/launch';
import { createMetadataServer } from '../infra-scripts/local/metadata-server';
import { setupRoleTokens } from '../infra-scripts/local/scenarios/acl';
import { roles, services } from '../shared/contract';
import { loadFigures, printFigures } from './lib/figures';
import { effectDelays, until, type Change, type Way } from './lib/haproxy-state';
import { percentile, startLoad, type LoadResult } from '../infra-scripts/local/load';
import { startTutorial } from './lib/tutorial-haproxy';

const argsSchema = z.object({
  changes: z.coerce.number().int().min(2).max(100).default(20),
  'gap-ms': z.coerce.number().int().min(500).max(20_000).default(2_000),
  scale: z.coerce.number().int().min(0).max(40).default(10),
  kills: z.coerce.number().int().min(0).max(20).default(5),
  rate: z.coerce.number().int().min(10).max(20_000).default(400),
  'post-rate': z.coerce.number().int().min(1).max(5_000).default(100),
});
type Args = z.infer<typeof argsSchema>;
/** `--smoke`: every stage once, at rates a shared 2-core machine takes beside other tests. */
const smokeArgs = { changes: 2, 'gap-ms': 2_000, scale: 1, kills: 1, rate: 20, 'post-rate': 10 };

const zone = 'bench-zone-a';
const log = (line: string) => {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
};

/** The Consul cluster, the backends (oldest first) and both HAProxies, ready to take load. */
interface World {
  cluster: ConsulCluster;
  backends: LocalInstance[];
  nameOf: Map<LocalInstance, string>;
  /** Boots one more backend and appends it to `backends`. */
  addBackend(): Promise<LocalInstance>;
  ways: Way[];
}

async function startWorld(cleanups: (() => Promise<unknown>)[]): Promise<World> {
  const prefix = randomLoopbackPrefix();
  const cluster = await startConsulCluster({ servers: 3, prefix });
  cleanups.push(() => cluster.stop());
  // Each role's own tokens, as on GCE: consul-template reads with the role's read-only default token.
  const md = createMetadataServer({ port: 0 });
  cleanups.push(() => md.stop());
  const tokens = await setupRoleTokens(cluster, { metadata: md, project: 'bench' }, roles);
  let host = 20;
  let serial = 0;
  const boot = async (role: Role, name: string): Promise<LocalInstance> => {
    const ip = `${prefix}.${host++}`;
    const metadataHost = await md.addInstance({
      id: String(randomInt(1e9, 9e9)),
      name,
      zone,
      ip,
      projectId: 'bench',
      projectNumber: '1',
      attributes: {
        'consul-servers': cluster.joinAddrs.join(' '),
        'consul-gossip-key': cluster.gossipKey,
        'consul-default-token': tokens[`${role}-default`],
      },
    });
    const instance = await launchInstance({ role, ip, metadataHost });
    cleanups.push(() => instance.kill().catch(() => undefined));
    return instance;
  };
  const nameOf = new Map<LocalInstance, string>();
  const backends: LocalInstance[] = [];
  const addBackend = async () => {
    const name = `backend-${++serial}`;
    const b = await boot('backend', name);
    nameOf.set(b, name);
    backends.push(b);
    return b;
  };
  for (let i = 0; i < 3; i++) await addBackend();
  const ours = await boot('haproxy', 'haproxy-ours');
  const tutorialDir = await startTutorial(`${prefix}.250`, cluster, cleanups);
  const ways: Way[] = [
    {
      label: 'original (consul-template -wait=1s:4s + restart)',
      host: `${prefix}.250`,
      adminSocket: path.join(tutorialDir, 'admin.sock'),
    },
    {
      label: 'ours (consul-template + haproxy-sync daemon)',
      host: ours.ip,
      adminSocket: path.join(ours.root, 'run/haproxy/admin.sock'),
    },
  ];
  for (const way of ways) {
    await waitFor(`${way.label} serving all backends`, () => servesAll(way.host, backends.length), {
      timeoutMs: 60_000,
    });
  }
  return { cluster, backends, nameOf, addBackend, ways };
}

function startLoads(ways: Way[], args: Args): void {
  for (const way of ways) {
    way.get = startLoad({
      host: way.host,
      port: services.haproxy.port,
      concurrency: 8,
      ratePerSec: args.rate,
    });
    // The backend answers POST / like GET (200 and its report); HAProxy's own 5xx and refused
    // connections are the failures.
    way.post = startLoad({
      host: way.host,
      port: services.haproxy.port,
      method: 'POST',
      body: '{"bench":true}',
      concurrency: 4,
      ratePerSec: args['post-rate'],
    });
  }
}

/** 1. Consul change → effect: in the runtime API, and in the traffic. */
async function measureChanges(world: World, args: Args) {
  const { ways, backends } = world;
  log(`1. ${args.changes} maintenance toggles, ${args['gap-ms']} ms apart`);
  const changes: Change[] = [];
  const stateDelays = ways.map(() => [] as number[]);
  for (let i = 0; i < args.changes; i++) {
    const b = backends[Math.floor(i / 2) % backends.length]!;
    const out = i % 2 === 0;
    const t0 = performance.now();
    changes.push({ at: t0, name: world.nameOf.get(b)!, out });
    await setMaintenance(world.cluster, b, out);
    const took = await Promise.all(ways.map((w) => until(w, b.ip, !out, t0, args['gap-ms'] * 4)));
    took.forEach((ms, w) => stateDelays[w]!.push(ms));
    await sleep(Math.max(0, t0 + args['gap-ms'] - performance.now()));
  }
  const routedDelays = ways.map((w) => effectDelays(w.get!.snapshot().answers, changes));
  return { stateDelays, routedDelays };
}

/** 2. Scale-outs, each followed by a scale-in of the oldest backend. */
async function measureScaling(world: World, args: Args): Promise<void> {
  log(`2. ${args.scale} scale-outs and ${args.scale} scale-ins`);
  const scaleIns: Promise<void>[] = [];
  for (let i = 0; i < args.scale; i++) {
    const b = await world.addBackend();
    await Promise.all(world.ways.map((w) => until(w, b.ip, true, performance.now(), 30_000)));
    // The oldest leaves as a MIG scale-in does: its shutdown script (maintenance, drain window, leave).
    const old = world.backends.shift()!;
    scaleIns.push(old.shutdown().catch((err: unknown) => log(`shutdown: ${String(err)}`)));
    await sleep(1_000);
  }
  await Promise.all(scaleIns);
  await sleep(1_000);
}

/** 3. Instances terminated: until each way stops routing, by any path and by Consul's. */
async function measureKills(world: World, args: Args) {
  const { ways } = world;
  log(`3. ${args.kills} instances killed`);
  const killDelays = ways.map(() => [] as number[]);
  const unlistDelays = ways.map(() => [] as number[]);
  const serfDelays: number[] = [];
  for (let i = 0; i < args.kills; i++) {
    const spare = await world.addBackend();
    await Promise.all(ways.map((w) => until(w, spare.ip, true, performance.now(), 30_000)));
    const victim = world.backends.shift()!;
    const t0 = performance.now();
    await victim.kill();
    const [serf, ...took] = await Promise.all([
      serfCritical(world.cluster, world.nameOf.get(victim)!, t0),
      ...ways.map((w) => until(w, victim.ip, false, t0, 60_000)),
      ...ways.map((w) => until(w, victim.ip, false, t0, 60_000, true)),
    ]);
    serfDelays.push(serf!);
    ways.forEach((_, w) => {
      killDelays[w]!.push(took[w]!);
      unlistDelays[w]!.push(took[ways.length + w]!);
    });
    await sleep(1_000);
  }
  return { killDelays, unlistDelays, serfDelays };
}

async function main(): Promise<void> {
  const options = Object.fromEntries(
    Object.keys(argsSchema.shape).map((k) => [k, { type: 'string' as const }]),
  );
  const { values } = parseArgs({ options: { ...options, smoke: { type: 'boolean' as const } } });
  const { smoke, ...given } = values;
  const args = argsSchema.parse({ ...(smoke ? smokeArgs : {}), ...given });
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const world = await startWorld(cleanups);
    const { ways } = world;
    startLoads(ways, args);
    const failures = () => ways.map((w) => [w.get!.snapshot().failed, w.post!.snapshot().failed]);
    await sleep(1_000);
    const { stateDelays, routedDelays } = await measureChanges(world, args);
    const beforeScale = failures();
    await measureScaling(world, args);
    const afterScale = failures();
    const { killDelays, unlistDelays, serfDelays } = await measureKills(world, args);
    const afterKills = failures();
    const results = await Promise.all(
      ways.map(async (w) => [await w.get!.stop(), await w.post!.stop()] as [LoadResult, LoadResult]),
    );
    const report: Report = {
      args,
      ways,
      results,
      stateDelays,
      routedDelays,
      scaleFailed: ways.map((_, w) => [0, 1].map((k) => afterScale[w]![k]! - beforeScale[w]![k]!)),
      killFailed: ways.map((_, w) => [0, 1].map((k) => afterKills[w]![k]! - afterScale[w]![k]!)),
      killDelays,
      unlistDelays,
      serfDelays,
    };
    print(report);
    printFigures(figures(report));
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

async function setMaintenance(
  cluster: ConsulCluster,
  backend: LocalInstance,
  enable: boolean,
): Promise<void> {
  const agent = cluster.servers[0]!.consul.at({ host: backend.ip, port: CONSUL_HTTP_PORT });
  await agent.agent.serviceMaintenance(services.backend.name, enable);
}

/** Time from `t0` until the node's serfHealth check is critical in the catalog. */
async function serfCritical(cluster: ConsulCluster, node: string, t0: number): Promise<number> {
  const consul = cluster.servers[0]!.consul;
  while (performance.now() < t0 + 60_000) {
    const checks = await consul.health.node(node).catch(() => []);
    if (checks.some((c) => c.CheckID === 'serfHealth' && c.Status === 'critical'))
      return performance.now() - t0;
    await sleep(50);
  }
  return NaN;
}

async function servesAll(host: string, count: number): Promise<boolean> {
  const seen = new Set<string>();
  for (let i = 0; i < count * 4; i++) {
    const res = await fetch(`http://${host}:${services.haproxy.port}/`, {
      signal: AbortSignal.timeout(2_000),
    });
    const body = (await res.json()) as { instance?: { name?: string } };
    if (body.instance?.name) seen.add(body.instance.name);
  }
  return seen.size === count;
}

interface Report {
  args: Args;
  ways: Way[];
  results: [LoadResult, LoadResult][];
  stateDelays: number[][];
  routedDelays: number[][];
  scaleFailed: number[][];
  killFailed: number[][];
  killDelays: number[][];
  unlistDelays: number[][];
  serfDelays: number[];
}

/** The figures line: per way, GET and POST counts and every stage's samples. */
function figures(r: Report) {
  return {
    args: r.args,
    ways: r.ways.map((way, w) => ({
      label: way.label,
      get: loadFigures(r.results[w]![0]),
      post: loadFigures(r.results[w]![1]),
      stateDelays: r.stateDelays[w],
      routedDelays: r.routedDelays[w],
      scaleFailed: r.scaleFailed[w],
      killFailed: r.killFailed[w],
      killDelays: r.killDelays[w],
      unlistDelays: r.unlistDelays[w],
    })),
    serfDelays: r.serfDelays,
  };
}

const ms = (values: number[]) => {
  const ok = values.filter((v) => Number.isFinite(v));
  const missed = values.length - ok.length;
  const p = (q: number) => percentile(ok, q).toFixed(0);
  return `${p(50)} / ${p(90)} / ${p(99)}${missed ? ` (${missed} never)` : ''}`;
};

function print(r: Report): void {
  const { args } = r;
  const row = (metric: string, cell: (w: number) => string) =>
    Object.fromEntries([['metric', metric], ...r.ways.map((way, w) => [way.label, cell(w)])]) as Record<
      string,
      string
    >;
  const total = (w: number, k: 0 | 1) => r.results[w]![k].ok + r.results[w]![k].failed;
  const rows = [
    row(`Consul change → server state in runtime API, p50/p90/p99 ms (${args.changes} changes)`, (w) =>
      ms(r.stateDelays[w]!),
    ),
    row('Consul change → requests follow (GET answers), p50/p90/p99 ms', (w) => ms(r.routedDelays[w]!)),
    row(`GETs failed during ${args.scale} scale-outs + ${args.scale} scale-ins`, (w) =>
      String(r.scaleFailed[w]![0]),
    ),
    row(`POSTs failed during ${args.scale} scale-outs + ${args.scale} scale-ins`, (w) =>
      String(r.scaleFailed[w]![1]),
    ),
    row(
      `instance killed → HAProxy stops routing to it (first of health checks and Consul), p50/p90/p99 ms (${args.kills} kills)`,
      (w) => ms(r.killDelays[w]!),
    ),
    row('  by the Consul path: killed → server out of the config / runtime API', (w) =>
      ms(r.unlistDelays[w]!),
    ),
    row('  Consul failure detection alone: killed → serfHealth critical', () => ms(r.serfDelays)),
    row(`GETs / POSTs failed during the ${args.kills} kills`, (w) => r.killFailed[w]!.join(' / ')),
    row('GETs failed / sent, whole run', (w) => `${r.results[w]![0].failed} / ${total(w, 0)}`),
    row('POSTs failed / sent, whole run', (w) => `${r.results[w]![1].failed} / ${total(w, 1)}`),
    row('GET latency p50 / p99 ms, whole run', (w) =>
      [50, 99].map((q) => percentile(r.results[w]![0].latencies, q).toFixed(1)).join(' / '),
    ),
    row('failure reasons (GET; POST)', (w) =>
      r.results[w]!.map((res) =>
        Object.entries(res.reasons)
          .map(([k, v]) => `${k}:${v}`)
          .join(' '),
      ).join('; '),
    ),
  ];
  console.log(
    `\nHAProxy membership, side by side (same Consul, backends and load; GET ${args.rate}/s and POST ${args['post-rate']}/s per way, loopback, ${os.cpus().length} cores)\n`,
  );
  console.table(rows);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
