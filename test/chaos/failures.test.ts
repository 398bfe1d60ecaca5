/**
 * The failure suite (`npm run test:chaos`): one sandbox under steady GET and POST load through the
 * frontend and HAProxy, then each fault in turn. Per fault it measures the requests that failed, how
 * long until HAProxy routes exactly to the passing backends of running instances, whether the Consul
 * catalog ends equal to the real membership, whether an autoscaler left its bounds, and whether every
 * audit event published got a decision from instanceEvents; it asserts those invariants and prints
 * the table. Needs `npx tsc -p tsconfig.build.json` (instances and functions run from dist/).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import path from 'node:path';
import { startLoad, type Load, type LoadResult } from '../../infra-scripts/local/load';
import { nodeMetaKeys } from '../../shared/contract';
import { createLogger } from '../../shared/logging';
import type { AuditFaults } from '../../infra-scripts/local/compute-emulator';
import type { Caller } from '../../infra-scripts/local/compute-emulator/emulator';
import type { Instance } from '../../infra-scripts/local/compute-emulator/state';
import { restartPubsubEmulator } from '../../infra-scripts/local/chaos/pubsub-restart';
import { startTcpProxy, type TcpProxy } from '../../infra-scripts/local/chaos/tcp-proxy';
import { topics } from '../../infra-scripts/local/scenarios/functions-host';
import { startSandbox, type Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import { sandboxProject, sandboxRegion } from '../../infra-scripts/local/scenarios/topology';
import { type PubsubEmulator, randomLoopbackPrefix, sleep } from '../harness';
import { bounds, type Check, EventLedger, membership, routing } from './probes';
import { budget, type FaultRow, formatReport, withinBudget } from './report';

jest.setTimeout(600_000);

const caller: Caller = { userAgent: 'chaos-suite' };
const region = { kind: 'regions' as const, name: sandboxRegion };
// Off until the fault that asks for it: the emulator reads these on every audit write.
const auditFaults: AuditFaults = { duplicate: 0, reorder: 0, delayMs: 0, holdMs: 8000, seed: 13 };

let sb: Sandbox;
let proxy: TcpProxy;
let pubsub: PubsubEmulator;
let ledger: EventLedger;
let getLoad: Load;
let postLoad: Load;
const rows: FaultRow[] = [];
const progress: string[] = [];
/** Audit entries the emulator could not publish (its sink failed): lost before Pub/Sub. */
let undelivered = 0;
/** The push bridge's subscription errors (a subscriber that errs stops delivering). */
const bridgeErrors: string[] = [];

const logger = createLogger({
  name: 'chaos',
  level: 'warn',
  destination: new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.includes('audit log entry not delivered')) undelivered++;
        else if (line.includes('subscription error')) bridgeErrors.push(line.slice(0, 300));
      cb();
    },
  }),
});

beforeAll(async () => {
  sb = await startSandbox({
    logger,
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    auditFaults,
    progress: (line) => void progress.push(line),
    functionsConsulAddr: async (httpAddr) => {
      const target = new URL(httpAddr);
      proxy = await startTcpProxy({
        listenHost: '127.0.0.1',
        target: { host: target.hostname, port: Number(target.port) },
      });
      return `http://${proxy.host}:${proxy.port}`;
    },
  });
  pubsub = sb.pubsub;
  ledger = new EventLedger(sandboxProject, 'instance-events', 'chaos-tap', sb.actions);
  await ledger.open(pubsub.host);
  const url = new URL(sb.frontendUrl()!);
  const target = { host: url.hostname, port: Number(url.port || 80), path: '/?format=json', timeoutMs: 5000 };
  getLoad = startLoad({ ...target, concurrency: 4, ratePerSec: 10 });
  postLoad = startLoad({ ...target, method: 'POST', concurrency: 2, ratePerSec: 4 });
  process.stdout.write(
    `chaos: sandbox up in ${(sb.startupMs / 1000).toFixed(0)} s; functions: ${sb.functions.join(', ')}\n`,
  );
}, 600_000);

afterAll(async () => {
  await getLoad?.stop();
  await postLoad?.stop();
  await ledger?.close();
  // Stopping the sandbox while an instance is still being recreated or preempted left its agent
  // running: let the groups settle first.
  await sb?.compute.emulator.settled(120_000);
  await sb?.stop();
  if (pubsub !== sb?.pubsub) await pubsub?.stop();
  await proxy?.stop();
  const text = formatReport(rows);
  process.stdout.write(`\n== failure suite\n${text}\n`);
  const out = process.env.CHAOS_REPORT;
  if (out) writeFileSync(out, `${text}\n`);
});

const members = (igm: string): Instance[] =>
  sb.compute.emulator
    .managedInstances(sb.compute.emulator.getIgm(region, igm))
    .flatMap((m) =>
      m.instance && m.instance.status === 'RUNNING' && m.slot.action === 'NONE' ? [m.instance] : [],
    );

function pick(igm: string): Instance {
  const victim = members(igm)[0];
  if (!victim) throw new Error(`no running ${igm} instance`);
  return victim;
}

const catalogId = async (name: string) =>
  (await sb.consul.read((c) => c.catalog.node(name)))?.meta[nodeMetaKeys.instanceId];

/** `victim`'s name runs again under a new id and its Consul node carries that id. */
async function replaced(victim: Instance): Promise<boolean> {
  const now = sb.compute.emulator
    .allInstances()
    .find((i) => i.name === victim.name && i.status === 'RUNNING');
  return !!now && now.id !== victim.id && (await catalogId(victim.name)) === now.id;
}

const say = (line: string) => void process.stdout.write(`chaos: ${line}\n`);

/** What differs now, for progress lines while a wait drags on. */
async function state(): Promise<string> {
  const [r, m] = await Promise.all([routing(sb), membership(sb)]).catch((err: unknown) => [
    { ok: false, detail: String(err) },
    { ok: false, detail: '' },
  ]);
  const out = ledger.outstanding();
  return [
    r.ok ? '' : `routing: ${r.detail}`,
    m.ok ? '' : `catalog: ${m.detail}`,
    out.length ? `${out.length} events without decision` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

async function until(ms: number, check: () => Promise<boolean>, what?: string): Promise<boolean> {
  const deadline = Date.now() + ms;
  let lastSay = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    if (what && Date.now() - lastSay > 20_000) {
      say(`  waiting for ${what}: ${await state()}`);
      lastSay = Date.now();
    }
    await sleep(1000);
  }
}

const diff = (a: LoadResult, b: LoadResult) => ({ ok: b.ok - a.ok, failed: b.failed - a.failed });

class Skip extends Error {}

interface FaultContext {
  note(line: string): void;
  /** Marks the fault as not runnable in this sandbox. */
  skip(reason: string): never;
}

/**
 * Runs one fault: waits for a clean start, injects, waits for `inject`'s completion check, lets the
 * system settle, and records a row while sampling routing and bounds every second.
 */
async function runFault(
  fault: string,
  inject: (ctx: FaultContext) => Promise<() => Promise<boolean>>,
  options: { doneMs?: number } = {},
): Promise<FaultRow> {
  const notes: string[] = [];
  const ctx: FaultContext = {
    note: (line) => void notes.push(line),
    skip: (reason) => {
      throw new Skip(reason);
    },
  };
  say(`${fault}: waiting for a clean start`);
  const clean = await until(
    120_000,
    async () => (await routing(sb)).ok && (await membership(sb)).ok,
    'a clean start',
  );
  if (!clean) notes.push('did not start from a clean state (routing or catalog differed)');

  const t0 = Date.now();
  const [get0, post0] = [getLoad.snapshot(), postLoad.snapshot()];
  const lost0 = undelivered;
  const errors0 = bridgeErrors.length;
  let sampling = true;
  let everBad = false;
  let goodSince: number | undefined = t0;
  let lastRouting: Check = { ok: true, detail: '' };
  let boundsOk = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await routing(sb).catch(() => undefined);
      if (r) {
        lastRouting = r;
        if (!r.ok) {
          everBad = true;
          goodSince = undefined;
        } else goodSince ??= Date.now();
      }
      const b = bounds(sb);
      if (!b.ok) {
        boundsOk = false;
        notes.push(`bounds: ${b.detail}`);
      }
      await sleep(1000);
    }
  })();

  let skipped: string | undefined;
  try {
    const done = await inject(ctx);
    say(`${fault}: injected`);
    if (!(await until(options.doneMs ?? 180_000, done, 'the fault to complete')))
      notes.push('the fault did not complete in time');
  } catch (err) {
    if (!(err instanceof Skip)) throw err;
    skipped = err.message;
  }
  // Settled: routing and catalog right for 5 s in a row, and every entry published since t0 decided.
  let steadySince: number | undefined;
  const settled = await until(
    120_000,
    async () => {
      const ok = (await routing(sb)).ok && (await membership(sb)).ok && ledger.outstanding(t0).length === 0;
      if (!ok) return ((steadySince = undefined), false);
      steadySince ??= Date.now();
      return Date.now() - steadySince >= 5000;
    },
    'the system to settle',
  );
  sampling = false;
  await sampler;
  const [catalog, finalRouting] = await Promise.all([membership(sb), routing(sb)]);
  if (!catalog.ok) notes.push(`catalog: ${catalog.detail}`);
  if (catalog.serfless.length)
    notes.push(`nodes without serfHealth (not gossip members to the servers): ${catalog.serfless.join(' ')}`);
  if (!finalRouting.ok) notes.push(`routing: ${finalRouting.detail}`);
  else if (!lastRouting.ok) goodSince = Date.now();
  const outstanding = ledger.outstanding(t0);
  if (outstanding.length) notes.push(`no decision for ${outstanding.slice(0, 5).join(', ')}`);
  if (!settled) notes.push('did not settle within 120 s');
  if (bridgeErrors.length > errors0)
    notes.push(`push bridge subscription errors: ${bridgeErrors.slice(errors0, errors0 + 3).join(' | ')}`);
  const decisions = ledger.log.filter((l) => l.at >= t0).map((l) => l.line);
  if (decisions.length) notes.push(`instanceEvents: ${decisions.slice(0, 20).join(' | ')}`);
  const row: FaultRow = {
    fault,
    ...(skipped ? { skipped } : {}),
    get: diff(get0, getLoad.snapshot()),
    post: diff(post0, postLoad.snapshot()),
    routingMs: finalRouting.ok ? (everBad ? (goodSince ?? Date.now()) - t0 : 0) : null,
    catalogEqual: catalog.ok,
    boundsOk,
    events: {
      published: ledger.publishedSince(t0),
      outstanding: outstanding.length,
      lostAtSource: undelivered - lost0,
    },
    notes,
  };
  rows.push(row);
  say(`${fault} done in ${Math.round((Date.now() - t0) / 1000)} s\n${formatReport([row])}`);
  return row;
}

/** The invariants every fault must keep. */
function expectInvariants(row: FaultRow): void {
  if (row.skipped) return;
  expect({ fault: row.fault, catalogEqual: row.catalogEqual, notes: row.notes }).toMatchObject({
    catalogEqual: true,
  });
  expect({ fault: row.fault, boundsOk: row.boundsOk }).toMatchObject({ boundsOk: true });
  expect({
    fault: row.fault,
    outstanding: row.events.outstanding,
    lost: row.events.lostAtSource,
  }).toMatchObject({
    outstanding: 0,
    lost: 0,
  });
  expect(row.routingMs).not.toBeNull();
  expect(row.routingMs!).toBeLessThanOrEqual(budget.routingMs);
  expect({ fault: row.fault, get: row.get, post: row.post, withinBudget: withinBudget(row) }).toMatchObject({
    withinBudget: true,
  });
}

test('kill a backend', async () => {
  const row = await runFault('kill a backend', async (ctx) => {
    const victim = pick('backend');
    ctx.note(`crashed ${victim.name} (${victim.id}); GCE restarts it`);
    sb.compute.emulator.crash(victim.zone, victim.name);
    let sawDown = false;
    let upSince: number | undefined;
    // Back means: failed, then its name passing again with the running instance's id for 15 s
    // (late events must not undo it). The MIG may have replaced it meanwhile: any id counts.
    return async () => {
      const ok = (await routing(sb)).ok;
      const id = await catalogId(victim.name);
      const now = sb.compute.emulator
        .allInstances()
        .find((i) => i.name === victim.name && i.status === 'RUNNING');
      const healthy = (await sb.consul.read((c) => c.health.node(victim.name))).every(
        (c) => c.Status === 'passing',
      );
      if (!healthy) sawDown = true;
      if (!(sawDown && healthy && ok && now && id === now.id)) return ((upSince = undefined), false);
      upSince ??= Date.now();
      return Date.now() - upSince > 15_000;
    };
  });
  expectInvariants(row);
});

test('preempt a backend (30 s shutdown window)', async () => {
  const row = await runFault('preempt a backend', async (ctx) => {
    const victim = pick('backend');
    ctx.note(`preempted ${victim.name} (${victim.id})`);
    sb.compute.emulator.preempt(victim.zone, victim.name);
    return () => replaced(victim);
  });
  expectInvariants(row);
});

test('delete an HAProxy instance', async () => {
  const row = await runFault('delete an HAProxy', async (ctx) => {
    const victim = pick('haproxy');
    ctx.note(`deleted ${victim.name} (${victim.id}) with instances.delete`);
    sb.compute.emulator.deleteInstance(victim.zone, victim.name, caller);
    const size = sb.compute.emulator.getIgm(region, 'haproxy').targetSize;
    return async () =>
      members('haproxy').length === size &&
      !members('haproxy').some((i) => i.id === victim.id) &&
      (await membership(sb)).ok;
  });
  expectInvariants(row);
});

test('recreate an instance with the same name', async () => {
  const row = await runFault('recreate same name', async (ctx) => {
    const victim = pick('backend');
    ctx.note(`recreateInstances ${victim.name} (${victim.id})`);
    sb.compute.emulator.actOnInstances(
      region,
      'backend',
      'recreateInstances',
      [`zones/${victim.zone}/instances/${victim.name}`],
      caller,
    );
    let since: number | undefined;
    // The old id's late events must not remove the new node: hold 15 s after it registered.
    return async () => {
      if (!(await replaced(victim))) return ((since = undefined), false);
      since ??= Date.now();
      return Date.now() - since > 15_000;
    };
  });
  expectInvariants(row);
});

test('lose the Consul leader', async () => {
  const row = await runFault('lose the Consul leader', async (ctx) => {
    const leader = await sb.consul.leader();
    ctx.note(
      `killed leader ${leader.name}${leader === sb.consul.servers[0] ? " (the functions' server)" : ''}`,
    );
    await leader.kill();
    const elected = await until(60_000, async () => (await sb.consul.leader()) !== leader);
    ctx.note(elected ? 'a new leader was elected' : 'no new leader within 60 s');
    await leader.restart();
    return async () => {
      const { servers } = await sb.consul.read((c) => c.operator.autopilotHealth());
      return servers.filter((s) => s.healthy).length === 3;
    };
  });
  expectInvariants(row);
});

test('Consul unreachable for the functions for 30 s', async () => {
  const row = await runFault('Consul unreachable 30 s', async (ctx) => {
    const victim = pick('backend');
    ctx.note(`functions' Consul cut for 30 s; preempted ${victim.name} meanwhile`);
    await proxy.cut();
    sb.compute.emulator.preempt(victim.zone, victim.name);
    await sleep(30_000);
    await proxy.restore();
    return () => replaced(victim);
  });
  expectInvariants(row);
});

test('every audit event delivered twice and out of order', async () => {
  const row = await runFault('events twice, out of order', async (ctx) => {
    Object.assign(auditFaults, { duplicate: 1, reorder: 1, delayMs: 300 });
    // One backend and one HAProxy: each tier keeps a member serving.
    const [a, b] = [pick('backend'), pick('haproxy')];
    ctx.note(`recreateInstances ${a.name}, preempt ${b.name}`);
    sb.compute.emulator.actOnInstances(
      region,
      'backend',
      'recreateInstances',
      [`zones/${a.zone}/instances/${a.name}`],
      caller,
    );
    sb.compute.emulator.preempt(b.zone, b.name);
    return async () => (await replaced(a)) && (await replaced(b));
  });
  Object.assign(auditFaults, { duplicate: 0, reorder: 0, delayMs: 0 });
  expectInvariants(row);
});

/** Reads the function's actions since `t0`; a configuration failure means it is not wired here. */
function notWired(fn: string, t0: number): string | undefined {
  const failed = sb.actions.find(
    (a) =>
      a.function === fn &&
      Date.parse(a.at) >= t0 &&
      (a.decision === 'failed' || a.decision === 'retry') &&
      /config|must be set|environment|SCALING_|HEALTH_SWEEP/i.test(a.message + JSON.stringify(a.detail)),
  );
  return failed ? `${fn} runs but is not configured in this sandbox: ${failed.message}` : undefined;
}

test('two sweeps at once', async () => {
  const row = await runFault('two sweeps at once', async (ctx) => {
    if (!sb.functions.includes('healthSweep')) ctx.skip('the sandbox runs no healthSweep');
    const t0 = Date.now();
    const victim = pick('backend');
    ctx.note(`crashed ${victim.name}, then published two sweeps at once`);
    sb.compute.emulator.crash(victim.zone, victim.name);
    await Promise.all([
      sb.publish('health-sweep', { source: 'chaos' }),
      sb.publish('health-sweep', { source: 'chaos' }),
    ]);
    await sleep(15_000);
    const why = notWired('healthSweep', t0);
    if (why) ctx.skip(why);
    const mine = sb.actions.filter((a) => a.function === 'healthSweep' && Date.parse(a.at) >= t0);
    ctx.note(`healthSweep decisions: ${mine.map((a) => a.decision).join(', ') || 'none logged'}`);
    return async () => (await routing(sb)).ok && (await catalogId(victim.name)) === victim.id;
  });
  expectInvariants(row);
});

const incidentFixture = JSON.parse(
  readFileSync(path.join(__dirname, '../fixtures/events/monitoring-incident-open.json'), 'utf8'),
) as { incident: Record<string, unknown> & { resource: { labels: Record<string, string> } } };

function incident(id: string, state: 'open' | 'closed', tier: string, on: Instance) {
  const i = structuredClone(incidentFixture.incident);
  return {
    version: '1.2',
    incident: {
      ...i,
      incident_id: id,
      state,
      ended_at: state === 'closed' ? Math.floor(Date.now() / 1000) : null,
      started_at: Math.floor(Date.now() / 1000) - 60,
      policy_user_labels: { tier, action: 'raise-min' },
      scoping_project_id: sandboxProject,
      resource: {
        type: 'gce_instance',
        labels: { instance_id: on.id, project_id: sandboxProject, zone: on.zone },
      },
      resource_id: on.id,
      resource_name: `${sandboxProject} ${on.name}`,
      resource_display_name: on.name,
    },
  };
}

test('open and close incidents while instances churn', async () => {
  const row = await runFault('incidents while churning', async (ctx) => {
    if (!sb.functions.includes('scalingAlerts')) ctx.skip('the sandbox runs no scalingAlerts');
    const t0 = Date.now();
    const emu = sb.compute.emulator;
    const policies = emu.allAutoscalers().map((a) => [a.name, a.policy.minNumReplicas] as const);
    const [be, hp] = [pick('backend'), pick('haproxy')];
    const ids = [`0.chaos${t0}a`, `0.chaos${t0}b`];
    await sb.publish('scaling-alerts', incident(ids[0]!, 'open', 'backend', be));
    await sb.publish('scaling-alerts', incident(ids[1]!, 'open', 'haproxy', hp));
    emu.actOnInstances(
      region,
      'backend',
      'recreateInstances',
      [`zones/${be.zone}/instances/${be.name}`],
      caller,
    );
    emu.preempt(hp.zone, hp.name);
    await sleep(10_000);
    const why = notWired('scalingAlerts', t0);
    if (why) ctx.skip(why);
    await sb.publish('scaling-alerts', incident(ids[0]!, 'closed', 'backend', be));
    await sb.publish('scaling-alerts', incident(ids[1]!, 'closed', 'haproxy', hp));
    ctx.note(`opened and closed 2 incidents; recreated ${be.name}, preempted ${hp.name}`);
    return async () => {
      const mine = sb.actions.filter((a) => a.function === 'scalingAlerts' && Date.parse(a.at) >= t0);
      const changed = policies.filter(
        ([name, min]) => emu.allAutoscalers().find((a) => a.name === name)?.policy.minNumReplicas !== min,
      );
      if (changed.length || !(await replaced(be)) || !(await replaced(hp))) return false;
      ctx.note(`scalingAlerts decisions: ${mine.map((a) => a.decision).join(', ') || 'none logged'}`);
      return true;
    };
  });
  expectInvariants(row);
});

// Last: pstest loses its subscriptions with its memory; if the push bridge's subscriber reconnects in
// the moment before they are recreated, it stops delivering for good and every later fault would
// inherit that.
test('restart the Pub/Sub emulator', async () => {
  const row = await runFault('restart Pub/Sub', async (ctx) => {
    const victim = pick('backend');
    const [seen0, lost0] = [ledger.published.size, undelivered];
    ctx.note(`emulator down 5 s; recreateInstances ${victim.name} while it is down`);
    pubsub = await restartPubsubEmulator(
      pubsub,
      {
        projectId: sandboxProject,
        topics,
        subscriptions: [
          ...topics.map((t) => ({ topic: t, name: `eventarc-${t}`, ackDeadlineSeconds: 70 })),
          { topic: 'instance-events', name: ledger.subscription },
        ],
      },
      5000,
      () =>
        void sb.compute.emulator.actOnInstances(
          region,
          'backend',
          'recreateInstances',
          [`zones/${victim.zone}/instances/${victim.name}`],
          caller,
        ),
    );
    await ledger.open(pubsub.host);
    // Done once the recreate's audit entries were published (or counted lost) after the restart.
    return async () => (ledger.published.size > seen0 || undelivered > lost0) && (await replaced(victim));
  });
  expectInvariants(row);
});
