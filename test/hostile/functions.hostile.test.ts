/**
 * The hostile-input suite: hundreds of malformed and hostile requests to every entry point, through
 * the real Functions Framework serving the built functions (as the sandbox runs them), backed by a
 * real Consul and the Compute emulator, several in flight at once. For every input: no crash, no
 * 5xx for what is the sender's fault (a 5xx means endless redelivery), a structured log line, and
 * afterwards no change in Consul or Compute but what one valid event sent mid-batch asked for.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { nodeMetaKeys } from '../../shared/contract';
import { eventFixture } from '../fixtures/events';
import {
  freePort,
  repoRoot,
  startConsulDev,
  startProcess,
  waitFor,
  type ConsulDev,
  type ManagedProcess,
} from '../harness';
import { clients, project, startTestEmulator, zones } from '../integration/compute-emulator-helpers';
import { sweepToken } from '../integration/health-sweep.support';
import {
  forceLeaveToken,
  functionToken as instanceEventsToken,
} from '../integration/instance-events.support';
import {
  alertPolicy,
  functionToken as scalingAlertsToken,
  policiesOnly,
} from '../integration/scaling-alerts.support';
import {
  eventarc,
  instanceEventInputs,
  notificationInputs,
  schedulerInputs,
  sweepHttpInputs,
  type CorpusContext,
  type HostileInput,
} from './corpus';

type Json = Record<string, unknown>;
const root = repoRoot();
const framework = path.join(root, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
const zone = zones[0]!;
const kvRoot = 'gce-ilb-orchestrator/';
const ledgerPrefix = `${kvRoot}ledger/instance-events/`;
const lockKey = `${kvRoot}health-sweep/lock`;

const kept = { name: 'backend-kept', id: '8100000000000000001' };
const victim = { name: 'backend-victim', id: '8100000000000000002' };
const ghost = { name: 'backend-ghost', id: '8100000000000000003' };

const rules = {
  version: 1,
  ownership: { namePrefixes: ['ilb-'] },
  tiers: Object.fromEntries(
    ['haproxy', 'frontend'].map((tier) => [
      tier,
      {
        autoscalers: [{ zone, name: `ilb-${tier}` }],
        floor: 1,
        ceiling: 4,
        maxStep: 2,
        cooldownSec: 0,
        maxChangesPerHour: 1000,
        lease: { defaultSec: 600, maxSec: 1200 },
      },
    ]),
  ),
};

interface Served {
  target: string;
  proc: ManagedProcess;
  port: number;
  /** Every line the process printed, unbounded (ManagedProcess keeps only the last 256 KiB). */
  lines: string[];
}

let consul: ConsulDev;
let admin: ConsulClient;
let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
const served = new Map<string, Served>();

async function serve(
  target: string,
  signature: 'cloudevent' | 'http',
  env: NodeJS.ProcessEnv,
): Promise<Served> {
  const port = await freePort();
  const lines: string[] = [];
  let partial = '';
  const proc = await startProcess({
    name: `function ${target}`,
    command: process.execPath,
    args: [
      framework,
      `--target=${target}`,
      `--signature-type=${signature}`,
      `--source=${path.join(root, 'dist/functions/index.js')}`,
      `--port=${port}`,
    ],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      METADATA_SERVER_DETECTION: 'none',
      GOOGLE_CLOUD_PROJECT: project,
      COMPUTE_API_ENDPOINT: emu.url,
      CONSUL_HTTP_ADDR: consul.httpAddr,
      ORCHESTRATOR_CONSUL_RETRIES: '1',
      LOG_LEVEL: 'info',
      ...env,
    },
    readyTimeoutMs: 60_000,
    ready: async () =>
      (await send(port, { method: 'OPTIONS', path: '/', headers: {} }).catch(() => null)) !== null,
    onOutput: (chunk) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.trim() !== ''));
    },
  });
  const s = { target, proc, port, lines };
  served.set(target, s);
  return s;
}

/** One raw HTTP request (paths are sent as given, not normalised as `fetch` would). */
function send(
  port: number,
  req: { method: string; path: string; headers: Record<string, string>; body?: Buffer },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port, method: req.method, path: req.path, headers: req.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    r.setTimeout(60_000, () => r.destroy(new Error('timed out')));
    r.on('error', reject);
    r.end(req.body);
  });
}

/** What Consul and Compute hold that no hostile input may change. */
async function snapshot() {
  const kvRes = await fetch(`${consul.httpAddr}/v1/kv/?recurse=true`, {
    headers: { 'x-consul-token': consul.token },
  });
  const kv =
    kvRes.status === 404
      ? []
      : ((await kvRes.json()) as { Key: string; Value: string | null; ModifyIndex: number }[]);
  const nodes = await admin.catalog.nodes();
  const services = (await (
    await fetch(`${consul.httpAddr}/v1/catalog/services`, {
      headers: { 'x-consul-token': consul.token },
    })
  ).json()) as Json;
  const checks = await admin.health.state('any');
  return {
    kv: Object.fromEntries(kv.map((e) => [e.Key, `${e.ModifyIndex}:${e.Value ?? ''}`])),
    nodes: Object.fromEntries(
      nodes.map((n) => [n.name, JSON.stringify({ address: n.address, meta: n.meta })]),
    ),
    services,
    checks: checks.map((k) => `${k.Node}/${k.CheckID}:${k.Status}`).sort(),
    autoscalers: Object.fromEntries(
      emu.emulator
        .allAutoscalers()
        .map((a) => [a.name, JSON.stringify({ policy: a.policy, pending: a.pendingOperation })]),
    ),
    groups: Object.fromEntries(
      emu.emulator
        .allIgms()
        .map((g) => [g.name, JSON.stringify({ targetSize: g.targetSize, template: g.instanceTemplate })]),
    ),
    instances: Object.fromEntries(emu.emulator.allInstances().map((i) => [i.name, `${i.id}:${i.status}`])),
  };
}
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** The snapshot without what the valid mid-batch events and the sweep's own lock legitimately change. */
function comparable(s: Snapshot) {
  const drop = <T>(o: Record<string, T>, keep: (k: string) => boolean) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => keep(k)));
  return {
    kv: drop(
      s.kv,
      (k) =>
        !k.startsWith(ledgerPrefix) &&
        k !== lockKey &&
        !k.includes(victim.id) &&
        !k.includes(victim.name) &&
        !k.includes(ghost.id) &&
        !k.includes(ghost.name) &&
        !k.includes('ilb-frontend'),
    ),
    nodes: drop(s.nodes, (k) => k !== victim.name),
    services: s.services,
    checks: s.checks.filter((k) => !k.startsWith(`${victim.name}/`)),
    autoscalers: drop(s.autoscalers, (k) => k !== 'ilb-frontend'),
    groups: drop(s.groups, (k) => k !== 'ilb-frontend-mig'),
    instances: drop(s.instances, (k) => !k.startsWith('ilb-frontend')),
  };
}

const ctx = (): CorpusContext => ({ project, zone, now: Date.now() });

function auditEntry(node: { name: string; id: string }, insertId: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      insertId,
      logName: `projects/${project}/logs/cloudaudit.googleapis.com%2Factivity`,
      operation: { id: `operation-${insertId}`, last: true, producer: 'compute.googleapis.com' },
      protoPayload: {
        methodName: 'v1.compute.instances.delete',
        resourceName: `projects/${project}/zones/${zone}/instances/${node.name}`,
      },
      resource: { type: 'gce_instance', labels: { instance_id: node.id, project_id: project, zone } },
      timestamp: new Date().toISOString(),
    }),
  );
}

let validCondition = '';

function incident(opts: {
  id: string;
  state: 'open' | 'closed';
  tier: string;
  zone: string;
  condition?: string;
}): Json {
  const body = eventFixture<{ incident: Json } & Json>(
    opts.state === 'open' ? 'monitoring-incident-open.json' : 'monitoring-incident-closed.json',
  );
  const startedAt = Math.floor(Date.now() / 1000) - 60;
  Object.assign(body.incident, {
    incident_id: opts.id,
    state: opts.state,
    started_at: startedAt,
    ended_at: opts.state === 'closed' ? startedAt + 30 : null,
    policy_name: 'hostile-policy',
    policy_user_labels: { tier: opts.tier, action: 'raise-min' },
    scoping_project_id: project,
    resource: { type: 'gce_instance', labels: { instance_id: '1', project_id: project, zone: opts.zone } },
  });
  if (opts.condition)
    body.incident.condition = { ...(body.incident.condition as Json), name: opts.condition };
  return body;
}

/** A valid input, delivered in the middle of its entry point's batch. */
function validInput(id: string, req: { headers: Record<string, string>; body: Buffer }): HostileInput {
  return { id, category: 'valid', method: 'POST', path: '/', expect: 'ack', ...req };
}

const withMiddle = (inputs: HostileInput[], valid: HostileInput) => {
  const half = Math.floor(inputs.length / 2);
  return [...inputs.slice(0, half), valid, ...inputs.slice(half)];
};

beforeAll(async () => {
  if (!existsSync(path.join(root, 'dist/functions/index.js')))
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
  [consul, { emu }] = await Promise.all([startConsulDev(), startTestEmulator({ alerting: policiesOnly })]);
  // The valid notification's alert policy: scalingAlerts acts only on what a real policy confirms.
  validCondition = await alertPolicy(emu.url, { tier: 'frontend', action: 'raise-min' });
  c = clients(emu.port);
  admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: consul.token }).consul,
  );
  for (const tier of ['haproxy', 'frontend']) {
    await c.igms.insert({
      project,
      zone,
      instanceGroupManagerResource: {
        name: `ilb-${tier}-mig`,
        baseInstanceName: `ilb-${tier}`,
        instanceTemplate: 'global/instanceTemplates/backend-tmpl',
        targetSize: 1,
      },
    });
    await c.autoscalers.insert({
      project,
      zone,
      autoscalerResource: {
        name: `ilb-${tier}`,
        target: `projects/${project}/zones/${zone}/instanceGroupManagers/ilb-${tier}-mig`,
        autoscalingPolicy: { minNumReplicas: 1, maxNumReplicas: 4, coolDownPeriodSec: 0 },
      },
    });
  }
  for (const node of [kept, victim])
    await admin.catalog.register({
      node: node.name,
      address: '10.200.0.1',
      nodeMeta: {
        [nodeMetaKeys.instanceId]: node.id,
        [nodeMetaKeys.zone]: zone,
        [nodeMetaKeys.role]: 'backend',
      },
      service: { service: 'backend', port: 8080, tags: [zone] },
    });
  const agent = consul.agent;
  const [ieToken, flToken, saToken, hsToken] = [
    await instanceEventsToken(agent),
    await forceLeaveToken(agent),
    await scalingAlertsToken(consul),
    await sweepToken(agent),
  ];
  const sweepEnv = {
    CONSUL_HTTP_TOKEN: hsToken,
    HEALTH_SWEEP_CONFIG_JSON: JSON.stringify({
      groups: [{ project, zone, name: 'ilb-haproxy-mig', role: 'haproxy' }],
      thresholds: { bootGraceSeconds: 3600, brokenGraceSeconds: 3600 },
    }),
  };
  await Promise.all([
    serve('instanceEvents', 'cloudevent', { CONSUL_HTTP_TOKEN: ieToken, CONSUL_FORCE_LEAVE_TOKEN: flToken }),
    serve('scalingAlerts', 'cloudevent', {
      CONSUL_HTTP_TOKEN: saToken,
      SCALING_RULES_JSON: JSON.stringify(rules),
    }),
    serve('healthSweep', 'cloudevent', sweepEnv),
    serve('healthSweepHttp', 'http', sweepEnv),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([...served.values()].map((s) => s.proc.stop()));
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

interface Outcome {
  target: string;
  input: HostileInput;
  status: number;
  error?: string;
  ms: number;
  /** The answer's body, kept for the operators' endpoint only. */
  body?: string;
}

test('hostile inputs to every entry point: no crash, no 5xx, a log line each, nothing changed, nothing lost', async () => {
  const now = ctx();
  // One tick first: the sweep's first run writes its marks; hostile ticks must change nothing more.
  const warm = eventarc(now, 'health-sweep', 'warm-up', Buffer.from('tick'));
  expect(
    (await send(served.get('healthSweep')!.port, { method: 'POST', path: '/', ...warm })).status,
  ).toBeLessThan(300);
  const before = await snapshot();
  expect(before.nodes).toHaveProperty(kept.name);

  const batches: Record<string, HostileInput[]> = {
    instanceEvents: withMiddle(
      instanceEventInputs(now, { kept, ghost }),
      validInput(
        'valid-instance-event',
        eventarc(now, 'instance-events', 'valid-1', auditEntry(victim, 'valid-victim')),
      ),
    ),
    scalingAlerts: withMiddle(
      notificationInputs(now, {
        open: incident({ id: '0.hostileopen', state: 'open', tier: 'haproxy', zone }),
        // A tier no rule file names: a closure of a matched incident is rightly recorded as seen.
        closed: incident({ id: '0.hostileclosed', state: 'closed', tier: 'unconfigured', zone }),
      }),
      validInput(
        'valid-notification',
        eventarc(
          now,
          'scaling-alerts',
          'valid-2',
          Buffer.from(
            JSON.stringify(
              incident({ id: '0.valid', state: 'open', tier: 'frontend', zone, condition: validCondition }),
            ),
          ),
        ),
      ),
    ),
    healthSweep: schedulerInputs(now),
    healthSweepHttp: sweepHttpInputs(),
  };
  const linesBefore = new Map([...served.values()].map((s) => [s.target, s.lines.length]));

  // Round-robin across the entry points, eight requests in flight at once.
  const queue: { target: string; input: HostileInput }[] = [];
  const longest = Math.max(...Object.values(batches).map((b) => b.length));
  for (let i = 0; i < longest; i++)
    for (const [target, list] of Object.entries(batches)) {
      const input = list[i];
      if (input) queue.push({ target, input });
    }
  const outcomes: Outcome[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const { target, input } = item;
        const t0 = performance.now();
        const res = await send(served.get(target)!.port, input).catch((err: unknown) => ({
          status: 0,
          body: '',
          error: (err as Error).message,
        }));
        outcomes.push({
          target,
          input,
          status: res.status,
          error: 'error' in res ? res.error : undefined,
          ms: performance.now() - t0,
          body: target === 'healthSweepHttp' ? res.body : undefined,
        });
      }
    }),
  );
  const wallMs = performance.now() - started;

  // Summary, printed whatever the outcome.
  const summary = Object.keys(batches).map((target) => {
    const mine = outcomes.filter((o) => o.target === target);
    const byStatus: Record<string, number> = {};
    for (const o of mine) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
    const byCategory: Record<string, number> = {};
    for (const o of mine) byCategory[o.input.category] = (byCategory[o.input.category] ?? 0) + 1;
    return {
      target,
      inputs: mine.length,
      byStatus,
      byCategory,
      slowestMs: Math.round(Math.max(...mine.map((o) => o.ms))),
      msByCategory: Object.fromEntries(
        Object.keys(byCategory).map((k) => [
          k,
          Math.round(mine.filter((o) => o.input.category === k).reduce((a, o) => a + o.ms, 0)),
        ]),
      ),
    };
  });
  console.log(
    `hostile-input suite: ${outcomes.length} requests in ${Math.round(wallMs)} ms\n${JSON.stringify(summary, null, 1)}`,
  );

  // Every entry point got at least 200 inputs, and every one was answered.
  for (const s of summary) expect(s.inputs).toBeGreaterThanOrEqual(200);
  const unanswered = outcomes
    .filter((o) => o.status === 0)
    .map((o) => `${o.target} ${o.input.id}: ${o.error}`);
  expect(unanswered).toEqual([]);
  // No process crashed.
  for (const s of served.values())
    expect({ target: s.target, running: s.proc.running }).toEqual({ target: s.target, running: true });
  // No 5xx: a Pub/Sub message is acknowledged (2xx); what Eventarc never sends may be refused (4xx).
  const wrong = outcomes
    .filter(
      (o) =>
        (o.status >= 500 && !(o.input.expect === 'framework-defect' && o.status === 500)) ||
        (o.input.expect === 'ack' && (o.status < 200 || o.status >= 300)),
    )
    .map((o) => `${o.target} ${o.input.id} (${o.input.expect}): ${o.status}`);
  expect(wrong).toEqual([]);

  // The operators' endpoint: no request without a well-formed bearer token ran a sweep, and every
  // sweep that ran on a request asking for a dry run was one, whatever else the request said.
  const http = outcomes.filter((o) => o.target === 'healthSweepHttp');
  const bearer = (o: Outcome) => /^bearer \S+$/i.test(o.input.headers.authorization ?? '');
  const swept = (o: Outcome) => o.status === 200 || o.status === 409;
  expect(http.filter((o) => !bearer(o) && swept(o)).map((o) => o.input.id)).toEqual([]);
  expect(http.filter((o) => !bearer(o) && o.status === 401).length).toBeGreaterThan(100);
  const notDry = http.filter((o) => {
    if (o.status !== 200) return false;
    const report = JSON.parse(o.body ?? '{}') as { dryRun?: unknown };
    return report.dryRun !== true;
  });
  expect(notDry.map((o) => o.input.id)).toEqual([]);

  // A structured line for each acknowledged message (the handlers log each decision). The
  // framework prints its own refusals (a body-parser stack trace for a 400) unstructured on
  // stderr; nothing unstructured may come from the project's code.
  const logs: Json[] = [];
  const decisionsOf = (lines: string[]) =>
    lines.filter((l) => l.startsWith('{') && (/"decision":/.test(l) || /"message":"health sweep/.test(l)))
      .length;
  const ackedBy = (target: string) =>
    outcomes.filter((o) => o.target === target && o.status >= 200 && o.status < 300).length;
  // The pipes from the functions may lag their answers a little.
  await waitFor(
    "every function's log lines",
    async () =>
      [...served.values()].every(
        (s) =>
          s.target === 'healthSweepHttp' ||
          decisionsOf(s.lines.slice(linesBefore.get(s.target))) >= ackedBy(s.target),
      ),
    { timeoutMs: 5_000 },
  ).catch(() => undefined);
  for (const s of served.values()) {
    const lines = s.lines.slice(linesBefore.get(s.target));
    const json = lines.filter((l) => l.startsWith('{'));
    const fromUs = lines.filter((l) => !l.startsWith('{') && /dist\/(functions|shared)\//.test(l));
    const badJson = json.filter((l) => {
      try {
        const j = JSON.parse(l) as Json;
        return typeof j.severity !== 'string' || typeof j.message !== 'string';
      } catch {
        return true;
      }
    });
    const decisions = decisionsOf(lines);
    const acked = ackedBy(s.target);
    const longest = Math.max(0, ...json.map((l) => l.length));
    logs.push({ target: s.target, lines: lines.length, structured: json.length, decisions, acked, longest });
    // A hostile value is quoted in a log line only clipped: an input cannot inflate the logs.
    expect({
      target: s.target,
      long: json.filter((l) => l.length > 8192).map((l) => l.slice(0, 300)),
    }).toEqual({
      target: s.target,
      long: [],
    });
    expect({ target: s.target, fromUs: fromUs.slice(0, 5), badJson: badJson.slice(0, 5) }).toEqual({
      target: s.target,
      fromUs: [],
      badJson: [],
    });
    if (s.target !== 'healthSweepHttp')
      expect({ target: s.target, everyAckLogged: decisions >= acked }).toEqual({
        target: s.target,
        everyAckLogged: true,
      });
  }
  console.log(`hostile-input suite, log lines per function: ${JSON.stringify(logs)}`);

  // The valid events in the middle were processed.
  expect(outcomes.find((o) => o.input.id === 'valid-instance-event')?.status).toBe(204);
  expect(await admin.catalog.node(victim.name)).toBeNull();
  const [frontend] = await c.autoscalers.get({ project, zone, autoscaler: 'ilb-frontend' });
  expect(Object.keys(frontend.autoscalingPolicy?.scalingSchedules ?? {})).toHaveLength(1);

  // Nothing else changed; the ledger holds only one encoded key per event, in its day folder.
  const after = await snapshot();
  expect(comparable(after)).toEqual(comparable(before));
  const ledgerKeys = Object.keys(after.kv).filter((k) => k.startsWith(ledgerPrefix));
  const badKeys = ledgerKeys.filter((k) => !/^\d{4}-\d{2}-\d{2}\/[^/]+$/.test(k.slice(ledgerPrefix.length)));
  expect(badKeys).toEqual([]);
  // Nothing outside the orchestrator's prefix appeared.
  expect(Object.keys(after.kv).filter((k) => !k.startsWith(kvRoot))).toEqual([]);
}, 300_000);
