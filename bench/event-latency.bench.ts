/**
 * End-to-end latency of the event path in the sandbox, per stage, over preemptions and deletions of
 * backend instances: audit entry emitted (the emulator's timestamp) → published to Pub/Sub → handled
 * by instanceEvents → node out of Consul's catalog → out of `consul members` → no HAProxy routing to
 * it. Also the deliveries the push bridge had to retry, by cause, and side by side how long a
 * terminated node stays in the catalog and member list with Consul's defaults (a plain agent killed,
 * nothing acting on it) versus this project. Prints figures, asserts nothing. Stages count from
 * the operation's first entry: the preemption, or a delete's `first` (which drains); "out of
 * catalog" is for good (a live agent may register its node again), "first out of catalog" the
 * first time it was gone. `--verbose` prints each trial's entries, runs and catalog/gossip timeline.
 *   npm run build && node dist/bench/event-latency.bench.js [--preemptions 20] [--deletions 20]
 *     [--faults e2e|none] [--window 30] [--verbose] [--smoke]
 * `--smoke`: one preemption, one deletion, a 5 s window (the check in test/bench/). The last line
 * is the figures as JSON (bench/lib/figures.ts), the trials with their stages and details included.
 */
import { parseArgs } from 'node:util';
import { nodeMetaKeys } from '../shared/contract';
import { createLogger } from '../shared/logging';
import type { AuditFaults } from '../infra-scripts/local/compute-emulator';
import { randomLoopbackPrefix, sleep, stopAllProcesses } from '../infra-scripts/local/launch';
import { type Sandbox, startSandbox } from '../infra-scripts/local/scenarios/sandbox';
import { sandboxRegion } from '../infra-scripts/local/scenarios/topology';
import {
  stages,
  haproxySlots,
  routedBy,
  running,
  tapAuditTopic,
  waitSteady,
  watchActions,
  type Handled,
  type Stage,
  type Tapped,
} from './lib/event-path';
import { printFigures } from './lib/figures';
import { percentile } from '../infra-scripts/local/load';

process.env.METADATA_SERVER_DETECTION ??= 'none';

/** The faults the e2e suite gives the audit sink (test/e2e/sandbox.test.ts). */
const e2eFaults: AuditFaults = { duplicate: 0.3, reorder: 0.5, delayMs: 400, seed: 20261127 };
const region = { kind: 'regions' as const, name: sandboxRegion };
const say = (line: string) => process.stdout.write(`${line}\n`);
/** Consul's default `reconnect_timeout` for a failed client member (agent configuration reference). */
const consulDefaultReconnectTimeout = '72h';

type Kind = 'preemption' | 'deletion';

interface Trial {
  kind: Kind;
  instance: string;
  instanceId: string;
  /** ms from the operation's first audit entry (its emulator timestamp). */
  stages: Partial<Record<Stage, number>>;
  /** What happened, for a reader looking for where the time went: entries and the function's runs. */
  detail: string[];
}

async function runTrial(
  sb: Sandbox,
  kind: Kind,
  tap: Tapped[],
  handled: Handled[],
  timeoutMs: number,
): Promise<Trial> {
  const victim = running(sb)[0];
  if (!victim) throw new Error('no running backend');
  const called = Date.now();
  if (kind === 'preemption') sb.compute.emulator.preempt(victim.zone, victim.name);
  else sb.compute.emulator.deleteInstance(victim.zone, victim.name, { userAgent: 'latency-bench' });
  const seen: Partial<Record<Stage, number>> = {};
  const deadline = called + timeoutMs;
  // A node may come back (its agent syncs again while still alive): out of the catalog counts from
  // the last time it was seen, observed for a while after everything looked done.
  let doneAt: number | undefined;
  // Transitions of the node's catalog presence (with its checks) and gossip status, for the detail.
  const timeline: [number, string][] = [];
  let lastCatalog = '';
  let lastMember = '';
  while (Date.now() < deadline && (doneAt === undefined || Date.now() - doneAt < 2000)) {
    const now = Date.now();
    const node = await sb.consul.read((c) => c.catalog.node(victim.name));
    const present = node?.meta[nodeMetaKeys.instanceId] === victim.id;
    const catalogNow = present
      ? `in catalog: ${(await sb.consul.read((c) => c.health.node(victim.name)))
          .map((c) => `${c.CheckID}=${c.Status}`)
          .join(' ')}`
      : 'out of catalog';
    if (catalogNow !== lastCatalog) timeline.push([now, (lastCatalog = catalogNow)]);
    if (present) delete seen['out of catalog'];
    else {
      seen['first out of catalog'] ??= now;
      seen['out of catalog'] ??= now;
    }
    const members = await sb.consul.read((c) => c.agent.members());
    const m = members.find((x) => x.name === victim.name && x.address === victim.networkIP);
    // Serf status: 1 alive, 2 leaving, 3 left, 4 failed.
    const memberNow = `member: ${m ? (['none', 'alive', 'leaving', 'left', 'failed'][m.status] ?? m.status) : 'gone'}`;
    if (memberNow !== lastMember) timeline.push([now, (lastMember = memberNow)]);
    if (m?.status !== 1) seen['not alive in members'] ??= now;
    if (!m) seen['gone from members'] ??= now;
    const tables = await haproxySlots(sb).catch(() => undefined);
    if (tables?.every((rows) => !routedBy(rows, victim.networkIP))) seen['HAProxy not routing'] ??= now;
    if (seen['out of catalog'] && seen['gone from members'] && seen['HAProxy not routing']) doneAt ??= now;
    else doneAt = undefined;
    await sleep(100);
  }
  const ofVictim = () =>
    tap
      .filter((t) => t.instanceId === victim.id && t.emittedAt >= called - 50)
      .sort((a, b) => a.emittedAt - b.emittedAt);
  const runsOf = (e: Tapped) =>
    handled.filter((h) => h.instanceId === victim.id && h.eventId.startsWith(`${e.insertId}/`));
  // The operation's entries and the function's runs of them may still be on their way.
  const settle = Date.now() + 20_000;
  while (Date.now() < settle) {
    const entries = ofVictim();
    const ended = entries.some((e) => e.phase !== 'first');
    if (ended && entries.every((e) => runsOf(e).length > 0)) break;
    await sleep(200);
  }
  const entries = ofVictim();
  const origin = entries[0]?.emittedAt ?? called;
  // The entry that acts first: the preemption, or the delete's `first` (the drain).
  const acting = entries[0];
  const stagesFrom: Trial['stages'] = {};
  if (acting) {
    const runs = runsOf(acting);
    stagesFrom.published = acting.publishedAt - origin;
    stagesFrom['pulled by a subscriber'] = acting.pulledAt - origin;
    if (runs.length) {
      stagesFrom['function started'] = Math.min(...runs.map((r) => r.startedAt)) - origin;
      stagesFrom['function done'] = Math.max(...runs.map((r) => r.doneAt)) - origin;
    }
    const last = entries.find((e) => e.phase === 'last');
    const lastRuns = last ? runsOf(last) : [];
    if (lastRuns.length) stagesFrom['last entry done'] = Math.max(...lastRuns.map((r) => r.doneAt)) - origin;
    for (const st of [
      'first out of catalog',
      'out of catalog',
      'not alive in members',
      'gone from members',
      'HAProxy not routing',
    ] as const)
      if (seen[st] !== undefined) stagesFrom[st] = Math.max(0, seen[st] - origin);
  }
  const detail = [
    ...timeline.map(([at, what]) => `${at - origin}: ${what}`),
    ...entries.map(
      (e) =>
        `entry ${e.method} ${e.phase}: emitted ${e.emittedAt - origin}, published ${e.publishedAt - origin}, pulled ${e.pulledAt - origin}`,
    ),
    ...entries
      .flatMap(runsOf)
      .map(
        (h) =>
          `run ${h.eventId.split('/').pop() ?? ''} ${h.action}: ${h.decision} (${h.reason}) ${Math.round(h.startedAt - origin)}..${Math.round(h.doneAt - origin)}`,
      ),
  ];
  return { kind, instance: victim.name, instanceId: victim.id, stages: stagesFrom, detail };
}

function table(title: string, trials: Trial[]): string[] {
  const lines = [`${title} (n=${trials.length}; ms from the operation's first audit entry)`];
  lines.push(
    `  ${'stage'.padEnd(24)} ${['n', 'p50', 'p90', 'p99', 'max'].map((h) => h.padStart(7)).join('')}`,
  );
  for (const s of stages) {
    const v = trials.map((t) => t.stages[s]).filter((x): x is number => x !== undefined);
    const cells = v.length
      ? [v.length, ...[50, 90, 99].map((p) => percentile(v, p)), Math.max(...v)]
      : [0, NaN, NaN, NaN, NaN];
    lines.push(
      `  ${s.padEnd(24)} ${cells.map((c) => (Number.isNaN(c) ? '-' : String(Math.round(c))).padStart(7)).join('')}`,
    );
  }
  return lines;
}

/**
 * Consul's defaults, nothing acting: a plain client agent joins and is killed (no leave); its node
 * stays in the catalog (serfHealth critical) and in the member list as failed until the leader
 * reaps it after `reconnect_timeout`. Observed for `windowSec`, then cleaned up by hand.
 */
async function consulDefaults(sb: Sandbox, windowSec: number) {
  const name = 'plain-agent-defaults';
  const agent = await sb.consul.startClient({ nodeName: name });
  await agent.kill();
  const killed = Date.now();
  let failedAt: number | undefined;
  let inCatalog = true;
  let member = 'alive';
  while (Date.now() - killed < windowSec * 1000) {
    inCatalog = (await sb.consul.read((c) => c.catalog.node(name))) !== null;
    const m = (await sb.consul.read((c) => c.agent.members())).find((x) => x.name === name);
    member = m
      ? ({ 1: 'alive', 2: 'leaving', 3: 'left', 4: 'failed' }[m.status] ?? String(m.status))
      : 'gone';
    if (member === 'failed' && failedAt === undefined) failedAt = Date.now();
    await sleep(500);
  }
  const observedMs = Date.now() - killed;
  await sb.consul.read((c) => c.agent.forceLeave(name)).catch(() => undefined);
  return { observedMs, inCatalog, member, failedAfterMs: failedAt && failedAt - killed };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preemptions: { type: 'string' },
      deletions: { type: 'string' },
      faults: { type: 'string', default: 'e2e' },
      window: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
    },
  });
  const count = (v: string | undefined) => Math.min(Math.max(Number(v) || 0, 0), 200);
  const trialsOfEach = values.smoke ? '1' : '20';
  const preemptions = count(values.preemptions ?? trialsOfEach);
  const deletions = count(values.deletions ?? trialsOfEach);
  const windowSec = Math.min(Math.max(Number(values.window ?? (values.smoke ? 5 : 30)) || 30, 5), 3600);
  const verbose = values.verbose === true;
  const faults = values.faults === 'none' ? undefined : e2eFaults;
  const logger = createLogger({ name: 'event-latency-bench', level: 'warn' });
  say(`audit sink faults: ${faults ? `as the e2e suite: ${JSON.stringify(faults)}` : 'none'}`);
  const t0 = Date.now();
  const sb = await startSandbox({
    logger,
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    auditFaults: faults,
  });
  say(`sandbox up in ${Math.round((Date.now() - t0) / 1000)} s; functions: ${sb.functions.join(', ')}`);
  try {
    // A fixed group size: the autoscaler must not add or remove backends between trials.
    sb.compute.emulator.getAutoscaler(region, 'backend-autoscaler').policy.mode = 'OFF';
    const size = sb.compute.emulator.getIgm(region, 'backend').targetSize;
    const tap = await tapAuditTopic(sb);
    const actions = watchActions(sb);
    const trials: Trial[] = [];
    const plan: Kind[] = [
      ...Array<Kind>(preemptions).fill('preemption'),
      ...Array<Kind>(deletions).fill('deletion'),
    ];
    for (const [i, kind] of plan.entries()) {
      await waitSteady(sb, size);
      const trial = await runTrial(sb, kind, tap.seen, actions.handled, 45_000);
      trials.push(trial);
      say(
        `${kind} ${i + 1}/${plan.length} ${trial.instance} (${trial.instanceId}): ` +
          stages
            .map((s) => `${s} ${trial.stages[s] === undefined ? '-' : Math.round(trial.stages[s])}`)
            .join(', '),
      );
      if (verbose) for (const line of trial.detail) say(`    ${line}`);
    }
    actions.stop();
    say('');
    for (const kind of ['preemption', 'deletion'] as const) {
      const of = trials.filter((t) => t.kind === kind);
      if (of.length) say(table(`${kind}s`, of).join('\n'));
    }
    const retried = [...actions.retries.entries()];
    say(
      `deliveries retried: ${retried.reduce((n, [, c]) => n + c, 0)}` +
        (retried.length ? `; causes: ${retried.map(([cause, c]) => `${c}× ${cause}`).join('; ')}` : ''),
    );
    await tap.close();

    say(`\nside by side: a terminated node in Consul's catalog and member list (observed ${windowSec} s)`);
    const d = await consulDefaults(sb, windowSec);
    say(
      `  Consul defaults (plain agent killed, nothing acting): after ${Math.round(d.observedMs / 1000)} s still in catalog: ${d.inCatalog ? 'yes (serfHealth critical)' : 'no'}; ` +
        `member: ${d.member}${d.failedAfterMs ? ` (failed after ${d.failedAfterMs} ms)` : ''}; reaped only after reconnect_timeout (default ${consulDefaultReconnectTimeout})`,
    );
    for (const kind of ['preemption', 'deletion'] as const) {
      const of = trials.filter((t) => t.kind === kind);
      if (!of.length) continue;
      const at = (s: Stage) => of.map((t) => t.stages[s]).filter((x): x is number => x !== undefined);
      const fmt = (v: number[]) =>
        v.length
          ? `p50 ${Math.round(percentile(v, 50))} ms, max ${Math.round(Math.max(...v))} ms (${v.length}/${of.length})`
          : 'never';
      say(
        `  this project, ${kind}: out of catalog ${fmt(at('out of catalog'))}; gone from members ${fmt(at('gone from members'))}`,
      );
    }
    printFigures({
      faults: faults ?? null,
      trials,
      retried: Object.fromEntries(retried),
      consulDefaults: { windowSec, ...d },
    });
  } finally {
    await sb.stop();
    await stopAllProcesses();
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stopAllProcesses();
  process.exit(1);
});
