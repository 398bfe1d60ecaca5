/**
 * Failed requests and latency under steady load during 10 backend membership changes, both ways
 * side by side: (a) the original tutorial (consul-template renders, then HAProxy is restarted) and
 * (b) ours (packer/haproxy: consul-template + haproxy-sync over the runtime API).
 *   npm run build && node dist/bench/haproxy-membership.bench.js [--changes 10] [--gap-ms 2500]
 *   [--rate 3000] [--concurrency 16]
 * Everything runs on 127.x.y.z addresses; the load keeps a steady rate, bounded by the run's length.
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
import { nodeMetaKeys, roles, services } from '../shared/contract';
import { percentile, startLoad, type LoadResult } from './lib/load';

const argsSchema = z.object({
  changes: z.coerce.number().int().min(2).max(40).default(10),
  'gap-ms': z.coerce.number().int().min(500).max(20_000).default(2_500),
  concurrency: z.coerce.number().int().min(1).max(64).default(16),
  rate: z.coerce.number().int().min(10).max(20_000).default(3_000),
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

interface Way {
  label: string;
  host: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      changes: { type: 'string' },
      'gap-ms': { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
    },
  });
  const args = argsSchema.parse(values);
  const prefix = randomLoopbackPrefix();
  const cleanups: (() => Promise<unknown>)[] = [];
  let cluster: ConsulCluster | undefined;
  let md: MetadataServer | undefined;
  try {
    cluster = await startConsulCluster({ servers: 3, prefix });
    // Each role's own tokens, as on GCE: consul-template reads with the role's read-only default token.
    const tokens = await setupRoleTokens(cluster, roles);
    md = createMetadataServer({ port: 9169 });
    let host = 20;
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
      cleanups.push(() => instance.kill());
      return instance;
    };
    const backends = await Promise.all([1, 2, 3, 4].map((i) => boot('backend', `backend-${i}`)));
    const ours = await boot('haproxy', 'haproxy-ours');
    const tutorial = await startTutorial(`${prefix}.40`, cluster, cleanups);

    const ways: Way[] = [
      { label: '(a) tutorial: consul-template + restart', host: tutorial },
      { label: '(b) ours: consul-template + runtime API', host: ours.ip },
    ];
    for (const way of ways) {
      await waitFor(`${way.label} serving all backends`, () => servesAll(way.host, backends.length), {
        timeoutMs: 60_000,
      });
    }

    const results: [Way, LoadResult, Change[]][] = [];
    for (const way of ways) {
      process.stderr.write(`running ${way.label}: ${args.changes} changes, ${args['gap-ms']} ms apart\n`);
      const load = startLoad({
        host: way.host,
        port: services.haproxy.port,
        concurrency: args.concurrency,
        ratePerSec: args.rate,
      });
      await sleep(1_000);
      const changes: Change[] = [];
      for (let i = 0; i < args.changes; i++) {
        // Half the changes take a backend out (maintenance, as a shutdown script does), half bring it back.
        const index = Math.floor(i / 2) % backends.length;
        const out = i % 2 === 0;
        changes.push({ at: performance.now(), name: `backend-${index + 1}`, out });
        await setMaintenance(cluster, backends[index]!, out);
        await sleep(args['gap-ms']);
      }
      results.push([way, await load.stop(), changes]);
    }
    print(results, args.changes, args.rate);
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
  return ip;
}

function print(results: [Way, LoadResult, Change[]][], changes: number, rate: number): void {
  const rows = results.map(([way, r, made]) => ({
    way: way.label,
    requests: r.ok + r.failed,
    'req/s': Math.round(((r.ok + r.failed) * 1000) / r.durationMs),
    failed: r.failed,
    'failed/change': (r.failed / changes).toFixed(1),
    // At a steady rate, failures per change read as the length of the outage each change causes.
    'outage ms/change': ((r.failed / changes / rate) * 1000).toFixed(0),
    'p50 ms': percentile(r.latencies, 50).toFixed(2),
    'p99 ms': percentile(r.latencies, 99).toFixed(2),
    'max ms': Math.max(...r.latencies).toFixed(1),
    'change→effect p50 ms': percentile(effectDelays(r.answers, made), 50).toFixed(0),
    'change→effect max ms': Math.max(...effectDelays(r.answers, made)).toFixed(0),
    reasons: Object.entries(r.reasons)
      .map(([k, v]) => `${k}:${v}`)
      .join(' '),
  }));
  console.log(`\nHAProxy membership changes: ${changes} per way, target ${rate} req/s on loopback\n`);
  console.table(rows);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
