/**
 * What the sandbox costs: start-up time (per phase), memory of the whole process tree once up, the
 * Compute emulator's latency through the real client, how long a MIG instance takes to boot and to
 * be deleted (shutdown script included), how long stopping everything takes, and the start-up time
 * over consecutive start-ups (min / median / max; the first one above counts as one of them).
 *   npm run build && node dist/bench/sandbox.bench.js [--calls 200] [--startups 5] [--smoke]
 * `--smoke`: 10 calls and a single start-up (the check in test/bench/). The last line is the figures
 * as JSON (bench/lib/figures.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { googleAuthLibrary } from 'google-gax';
import { RegionInstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/region_instance_group_managers_client';
import { createLogger, type Logger } from '../shared/logging';
import { repairNote, type Sandbox, startSandbox } from '../infra-scripts/local/scenarios/sandbox';
import { sandboxRegion } from '../infra-scripts/local/scenarios/topology';
import { randomLoopbackPrefix, stopAllProcesses } from '../infra-scripts/local/launch';
import { printFigures } from './lib/figures';
import { percentile } from '../infra-scripts/local/load';

process.env.METADATA_SERVER_DETECTION ??= 'none';

/** RSS in MiB of this process and all its descendants, from /proc. */
function treeRssMiB(root: number): { processes: number; mib: number } {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(entry), Number(fields[1]));
      rss.set(Number(entry), (Number(fields[21]) * 4096) / 1024 / 1024);
    } catch {
      // The process ended while we looked.
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p && hops < 64; p = parent.get(p), hops++)
      if (p === root) return true;
    return false;
  };
  let mib = 0;
  let processes = 0;
  for (const [pid, r] of rss) {
    if (!inTree(pid)) continue;
    mib += r;
    processes++;
  }
  return { processes, mib: Math.round(mib) };
}

interface Startup {
  sb: Sandbox;
  ms: number;
  phases: { phase: string; atMs: number }[];
  /** Nodes seen healthy in Consul but without their metadata while waiting (a join race). */
  withoutIdentity: string[];
  /** Instances whose agent unit found its node without metadata after join and registered it again. */
  repaired: string[];
}

async function startOnce(logger: Logger): Promise<Startup> {
  const t0 = performance.now();
  const phases: Startup['phases'] = [];
  const withoutIdentity = new Set<string>();
  const repaired: string[] = [];
  const sb = await startSandbox({
    logger,
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    progress: (line) => {
      if (line.startsWith('[')) phases.push({ phase: line, atMs: Math.round(performance.now() - t0) });
      for (const m of line.matchAll(/([\w-]+): no-identity/g)) withoutIdentity.add(m[1]!);
      if (line.endsWith(repairNote)) repaired.push(line.trim().split(':')[0]!);
    },
  });
  return {
    sb,
    ms: Math.round(performance.now() - t0),
    phases,
    withoutIdentity: [...withoutIdentity],
    repaired,
  };
}

/** Start-ups after the first, each stopped before the next; returns every start-up's figures. */
async function consecutiveStartups(logger: Logger, first: Startup, count: number) {
  const runs = [{ ms: first.ms, withoutIdentity: first.withoutIdentity, repaired: first.repaired }];
  for (let i = 1; i < count; i++) {
    const run = await startOnce(logger);
    await run.sb.stop();
    await stopAllProcesses();
    runs.push({ ms: run.ms, withoutIdentity: run.withoutIdentity, repaired: run.repaired });
    process.stdout.write(`start-up ${i + 1}/${count}: ${(run.ms / 1000).toFixed(1)} s\n`);
  }
  const sorted = runs.map((r) => r.ms).sort((a, b) => a - b);
  return {
    runs,
    minMs: sorted[0]!,
    medianMs: sorted[Math.floor((sorted.length - 1) / 2)]!,
    maxMs: sorted[sorted.length - 1]!,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { calls: { type: 'string' }, startups: { type: 'string' }, smoke: { type: 'boolean' } },
  });
  const calls = Math.min(Math.max(Number(values.calls ?? (values.smoke ? 10 : 200)), 1), 5000);
  const startups = Math.min(Math.max(Number(values.startups ?? (values.smoke ? 1 : 5)), 1), 20);
  const logger = createLogger({ name: 'sandbox-bench', level: 'warn' });
  const first = await startOnce(logger);
  const { sb, phases } = first;
  try {
    const startupMs = first.ms;
    const memory = treeRssMiB(process.pid);

    const client = new RegionInstanceGroupManagersClient({
      apiEndpoint: '127.0.0.1',
      port: sb.compute.port,
      protocol: 'http',
      authClient: new googleAuthLibrary.PassThroughClient({
        transporterOptions: { fetchImplementation: fetch },
      }),
    });
    const latencies: number[] = [];
    for (let i = 0; i < calls; i++) {
      const c0 = performance.now();
      await client.listManagedInstances({
        project: sb.project,
        region: sandboxRegion,
        instanceGroupManager: 'backend',
      });
      latencies.push(performance.now() - c0);
    }
    latencies.sort((a, b) => a - b);

    // One more backend: from resize to RUNNING, then back: from resize to gone (shutdown script included).
    const emu = sb.compute.emulator;
    const region = { kind: 'regions' as const, name: sandboxRegion };
    emu.getAutoscaler(region, 'backend-autoscaler').policy.mode = 'OFF';
    const r0 = performance.now();
    emu.resize(region, 'backend', 3, { userAgent: 'bench' });
    // settled() answers false at its timeout: that is no boot time, but a boot that never finished.
    if (!(await emu.settled(120_000))) throw new Error('the added backend did not boot in 120 s');
    const bootMs = Math.round(performance.now() - r0);
    const d0 = performance.now();
    emu.resize(region, 'backend', 2, { userAgent: 'bench' });
    if (!(await emu.settled(120_000))) throw new Error('the removed backend was not deleted in 120 s');
    const deleteMs = Math.round(performance.now() - d0);
    await client.close();

    const s0 = performance.now();
    await sb.stop();
    const stopMs = Math.round(performance.now() - s0);
    await stopAllProcesses();
    const repeated = await consecutiveStartups(logger, first, startups);
    const figures = {
      startupMs,
      phases,
      processes: memory.processes,
      rssMiB: memory.mib,
      listManagedInstances: {
        calls,
        p50Ms: +percentile(latencies, 50).toFixed(2),
        p95Ms: +percentile(latencies, 95).toFixed(2),
      },
      instanceBootMs: bootMs,
      instanceDeleteMs: deleteMs,
      stopMs,
      startups: repeated,
    };
    process.stdout.write(
      [
        `sandbox up in ${(startupMs / 1000).toFixed(1)} s (5 instances, 3 Consul servers, functions: ${sb.functions.join(', ') || 'none'})`,
        `memory once up: ${memory.mib} MiB RSS over ${memory.processes} processes (bench process included)`,
        `listManagedInstances via the real client: p50 ${figures.listManagedInstances.p50Ms} ms, p95 ${figures.listManagedInstances.p95Ms} ms over ${calls} calls`,
        `one backend instance: boot ${bootMs} ms, delete with shutdown script ${deleteMs} ms`,
        `stop everything: ${stopMs} ms`,
        `${startups} consecutive start-ups: min ${(repeated.minMs / 1000).toFixed(1)} s, median ${(repeated.medianMs / 1000).toFixed(1)} s, max ${(repeated.maxMs / 1000).toFixed(1)} s` +
          ` (${repeated.runs.map((r) => (r.ms / 1000).toFixed(1)).join(', ')}; nodes seen without metadata: ${repeated.runs.flatMap((r) => r.withoutIdentity).join(', ') || 'none'}; re-registered by their agent unit: ${repeated.runs.flatMap((r) => r.repaired).join(', ') || 'none'})`,
        '',
      ].join('\n'),
    );
    printFigures(figures);
  } finally {
    await sb.stop();
    await stopAllProcesses();
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  await stopAllProcesses();
  process.exit(1);
});
