/**
 * Backend membership changes under steady GET and POST load, side by side in one run on the same
 * Consul cluster and backends: (a) the original tutorial (consul-template `-wait=1s:4s` renders,
 * then HAProxy is restarted) and (b) ours (packer/haproxy: consul-template + the haproxy-sync daemon
 * over the runtime API). Both HAProxies watch the same catalog and take the same load at once.
 *   npm run build && node dist/bench/haproxy-membership.bench.js [--changes 20] [--gap-ms 2000]
 *   [--scale 10] [--kills 5] [--rate 400] [--post-rate 100]
 * 1. Consul change → HAProxy effect, `--changes` backend maintenance toggles: until the server state
 *    in HAProxy's runtime API changed, and until the requests follow (first/last answer from it).
 * 2. Requests failed (GETs and POSTs apart) during `--scale` scale-outs (a backend instance boots)
 *    and as many scale-ins (its shutdown script: maintenance, drain window, leave, stop).
 * 3. Instance terminated (SIGKILL, no shutdown script) → HAProxy stops routing to it: Consul's
 *    failure detection, then each way's own path (HAProxy's health checks count for both).
 * Everything runs on 127.x.y.z addresses; the loads keep a steady rate, bounded by the run's length.
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';

import { launchInstance, type LocalInstance, type Role } from '../infra-scripts/local/instance';
import {
  CONSUL_HTTP_PORT,
  randomLoopbackPrefix,
  repoRoot,
  sleep,
  startConsulCluster,
  startProcess,
  tcpOpen,
  toolPath,
  waitFor,
  type ConsulCluster,
  type ManagedProcess,
} from '../infra-scripts/local/launch';
import { createMetadataServer, type MetadataServer } from '../infra-scripts/local/metadata-server';
import { setupRoleTokens } from '../infra-scripts/local/scenarios/acl';
import { haproxyCommand } from '../services/haproxy-sync/runtime';
import { nodeMetaKeys, roles, services } from '../shared/contract';
import { percentile, startLoad, type Load, type LoadResult } from '../infra-scripts/local/load';

const argsSchema = z.object({
  changes: z.coerce.number().int().min(2).max(100).default(20),
  'gap-ms': z.coerce.number().int().min(500).max(20_000).default(2_000),
  scale: z.coerce.number().int().min(0).max(40).default(10),
  kills: z.coerce.number().int().min(0).max(20).default(5),
  rate: z.coerce.number().int().min(10).max(20_000).default(400),
  'post-rate': z.coerce.number().int().min(1).max(5_000).default(100),
});

const zone = 'bench-zone-a';

interface Change {
  at: number;
  name: string;
  out: boolean;
}

/**
 * Pure: how long each change took to show in the traffic: the last answer from a removed backend,
 * or the first from a returning one, after the change (Consul, quiescence, apply, all included).
 */
export function effectDelays(answers: [number, string][], changes: Change[]): number[] {
  return changes.map((change, i) => {
    const until = changes[i + 1]?.at ?? Infinity;
    const from = answers.filter(([t, name]) => name === change.name && t >= change.at && t < until);
    if (change.out) return from.length ? from[from.length - 1]![0] - change.at : 0;
    return from.length ? from[0]![0] - change.at : NaN;
  });
}

/** A server as `show servers state` lists it. */
interface ServerState {
  addr: string;
  /** srv_op_state: 0 stopped (down), 2 running. */
  op: number;
  /** srv_admin_state's maintenance bits (forced, inherited, resolver). */
  maint: boolean;
}

/** Pure: `show servers state <backend>` by its header's column names. */
export function parseServerStates(answer: string): ServerState[] {
  const lines = answer.split('\n').filter((l) => l.trim());
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) throw new Error(`unexpected answer: ${answer.slice(0, 100)}`);
  const cols = header.slice(2).trim().split(/\s+/);
  const [iAddr, iOp, iAdmin] = ['srv_addr', 'srv_op_state', 'srv_admin_state'].map((c) => cols.indexOf(c));
  return lines
    .filter((l) => !l.startsWith('#') && /\s/.test(l))
    .map((l) => l.trim().split(/\s+/))
    .map((f) => ({
      addr: f[iAddr!] ?? '',
      op: Number(f[iOp!]),
      maint: (Number(f[iAdmin!]) & 0x23) !== 0,
    }));
}

interface Way {
  label: string;
  host: string;
  adminSocket: string;
  get?: Load;
  post?: Load;
}

/**
 * Whether `ip` takes requests in this HAProxy (`listed`: whether its config or runtime API still
 * lists it, health checks aside); undefined while HAProxy does not answer (a restart).
 */
async function routes(way: Way, ip: string, listed = false): Promise<boolean | undefined> {
  const answer = await haproxyCommand(way.adminSocket, 'show servers state backends', 1_000).catch(() => '');
  let states: ServerState[];
  try {
    states = parseServerStates(answer);
  } catch {
    return undefined;
  }
  return states.some((s) => s.addr === ip && !s.maint && (listed || s.op !== 0));
}

/** Time from `t0` until `ip` is (or is no longer) routed by `way`; polled every 10 ms. */
async function until(
  way: Way,
  ip: string,
  routed: boolean,
  t0: number,
  timeoutMs: number,
  listed = false,
): Promise<number> {
  const deadline = t0 + timeoutMs;
  while (performance.now() < deadline) {
    if ((await routes(way, ip, listed)) === routed) return performance.now() - t0;
    await sleep(10);
  }
  return NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: Object.fromEntries(Object.keys(argsSchema.shape).map((k) => [k, { type: 'string' as const }])),
  });
  const args = argsSchema.parse(values);
  const prefix = randomLoopbackPrefix();
  const cleanups: (() => Promise<unknown>)[] = [];
  let cluster: ConsulCluster | undefined;
  let md: MetadataServer | undefined;
  const log = (line: string) => {
    process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };
  try {
    cluster = await startConsulCluster({ servers: 3, prefix });
    // Each role's own tokens, as on GCE: consul-template reads with the role's read-only default token.
    const tokens = await setupRoleTokens(cluster, roles);
    md = createMetadataServer({ port: 0 });
    let host = 20;
    let serial = 0;
    const boot = async (role: Role, name: string): Promise<LocalInstance> => {
      const ip = `${prefix}.${host++}`;
      const metadataHost = await md!.addInstance({
        id: String(randomInt(1e9, 9e9)),
        name,
        zone,
        ip,
        projectId: 'bench',
        projectNumber: '1',
        attributes: {
          'consul-servers': cluster!.joinAddrs.join(' '),
          'consul-gossip-key': cluster!.gossipKey,
          'consul-agent-token': tokens[role],
          'consul-default-token': tokens[`${role}-default`],
        },
      });
      const instance = await launchInstance({ role, ip, metadataHost });
      cleanups.push(() => instance.kill().catch(() => undefined));
      return instance;
    };
    const backend = () => boot('backend', `backend-${++serial}`);
    const nameOf = new Map<LocalInstance, string>();
    const backends: LocalInstance[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await backend();
      nameOf.set(b, `backend-${serial}`);
      backends.push(b);
    }
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
    for (const way of ways) {
      way.get = startLoad({
        host: way.host,
        port: services.haproxy.port,
        concurrency: 8,
        ratePerSec: args.rate,
      });
      way.post = startLoad({
        host: way.host,
        port: services.haproxy.port,
        method: 'POST',
        body: '{"bench":true}',
        // The backend app answers POST with 405 itself: routed to a live server. HAProxy's own 5xx fail.
        accept: (status) => status === 405,
        concurrency: 4,
        ratePerSec: args['post-rate'],
      });
    }
    const failures = () => ways.map((w) => [w.get!.snapshot().failed, w.post!.snapshot().failed]);
    await sleep(1_000);

    // 1. Consul change → effect.
    log(`1. ${args.changes} maintenance toggles, ${args['gap-ms']} ms apart`);
    const changes: Change[] = [];
    const stateDelays = ways.map(() => [] as number[]);
    for (let i = 0; i < args.changes; i++) {
      const b = backends[Math.floor(i / 2) % backends.length]!;
      const out = i % 2 === 0;
      const t0 = performance.now();
      changes.push({ at: t0, name: nameOf.get(b)!, out });
      await setMaintenance(cluster, b, out);
      const took = await Promise.all(ways.map((w) => until(w, b.ip, !out, t0, args['gap-ms'] * 4)));
      took.forEach((ms, w) => stateDelays[w]!.push(ms));
      await sleep(Math.max(0, t0 + args['gap-ms'] - performance.now()));
    }
    const routedDelays = ways.map((w) => effectDelays(w.get!.snapshot().answers, changes));

    // 2. Scale-out and scale-in.
    log(`2. ${args.scale} scale-outs and ${args.scale} scale-ins`);
    const beforeScale = failures();
    const scaleIns: Promise<void>[] = [];
    for (let i = 0; i < args.scale; i++) {
      const b = await backend();
      nameOf.set(b, `backend-${serial}`);
      backends.push(b);
      await Promise.all(ways.map((w) => until(w, b.ip, true, performance.now(), 30_000)));
      // The oldest leaves as a MIG scale-in does: its shutdown script (maintenance, drain window, leave).
      const old = backends.shift()!;
      scaleIns.push(old.shutdown().catch((err: unknown) => log(`shutdown: ${String(err)}`)));
      await sleep(1_000);
    }
    await Promise.all(scaleIns);
    await sleep(1_000);
    const afterScale = failures();

    // 3. Instance terminated.
    log(`3. ${args.kills} instances killed`);
    const killDelays = ways.map(() => [] as number[]);
    const unlistDelays = ways.map(() => [] as number[]);
    const serfDelays: number[] = [];
    for (let i = 0; i < args.kills; i++) {
      const spare = await backend();
      nameOf.set(spare, `backend-${serial}`);
      backends.push(spare);
      await Promise.all(ways.map((w) => until(w, spare.ip, true, performance.now(), 30_000)));
      const victim = backends.shift()!;
      const t0 = performance.now();
      await victim.kill();
      const [serf, ...took] = await Promise.all([
        serfCritical(cluster, nameOf.get(victim)!, t0),
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
    const afterKills = failures();

    const results = await Promise.all(
      ways.map(async (w) => [await w.get!.stop(), await w.post!.stop()] as [LoadResult, LoadResult]),
    );
    print({
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
    });
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await md?.stop();
    await cluster?.stop();
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

/** The baseline: a tutorial-style template, consul-template restarting a daemonized HAProxy. */
async function startTutorial(
  ip: string,
  cluster: ConsulCluster,
  cleanups: (() => Promise<unknown>)[],
): Promise<string> {
  const agent = await cluster.startClient({
    nodeName: 'haproxy-tutorial',
    ip,
    nodeMeta: { [nodeMetaKeys.role]: 'haproxy' },
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ilb-tutorial-'));
  const fixtures = path.join(repoRoot(), 'bench', 'fixtures');
  const env = {
    ...process.env,
    BENCH_DIR: dir,
    HAPROXY: toolPath('haproxy'),
    ILB_BIND_ADDR: ip,
    CONSUL_HTTP_ADDR: agent.httpAddr,
    CONSUL_HTTP_TOKEN: cluster.token,
  };
  const template = `${path.join(fixtures, 'tutorial-haproxy.cfg.ctmpl')}:${path.join(dir, 'haproxy.cfg')}:${path.join(fixtures, 'tutorial-restart.sh')}`;
  const ct: ManagedProcess = await startProcess({
    name: 'consul-template (tutorial)',
    command: toolPath('consul-template'),
    args: [`-template=${template}`, '-wait=1s:4s'],
    env,
    ready: () => tcpOpen(ip, services.haproxy.port),
  });
  cleanups.push(async () => {
    await ct.stop('SIGINT');
    const pid = Number((await readFile(path.join(dir, 'haproxy.pid'), 'utf8').catch(() => '')).trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

const ms = (values: number[]) => {
  const ok = values.filter((v) => Number.isFinite(v));
  const missed = values.length - ok.length;
  const p = (q: number) => percentile(ok, q).toFixed(0);
  return `${p(50)} / ${p(90)} / ${p(99)}${missed ? ` (${missed} never)` : ''}`;
};

function print(r: {
  args: z.infer<typeof argsSchema>;
  ways: Way[];
  results: [LoadResult, LoadResult][];
  stateDelays: number[][];
  routedDelays: number[][];
  scaleFailed: number[][];
  killFailed: number[][];
  killDelays: number[][];
  unlistDelays: number[][];
  serfDelays: number[];
}): void {
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
