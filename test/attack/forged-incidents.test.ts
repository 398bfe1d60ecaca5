import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logging';
import { noMetrics } from '../../shared/gcp/monitoring';
import { parseRuleFile } from '../../shared/scaling-alerts/rules';
import { scalingAlertsFromConfig } from '../../shared/scaling-alerts/wire';
import {
  ProcessDriver,
  startComputeEmulator,
  type RunningEmulator,
} from '../../infra-scripts/local/compute-emulator';
import { startConsulDev, type ConsulDev } from '../harness';
import { clients, instanceCommand, project, zones } from '../integration/compute-emulator-helpers';
import {
  alertPolicy as supportPolicy,
  autoscaledGroup,
  functionToken,
  notification,
  readRecord,
} from '../integration/scaling-alerts.support';

/**
 * From the seat of a publisher on the scaling-alerts topic: every message below is one a publisher
 * can send (any policy name, labels, ids and times). Only an incident of a policy that exists in
 * Cloud Monitoring, is enabled and carries the rule's labels may change an autoscaler; the record
 * stays bounded whatever is published; a lease never outlives its maximum lifetime.
 */

type Json = Record<string, unknown>;
const zone = zones[0]!;

let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let consul: ConsulDev;
let token: string;

const tier = (name: string) => ({
  autoscalers: [{ project, zone, name }],
  floor: 1,
  ceiling: 5,
  maxStep: 3,
  cooldownSec: 0,
  maxChangesPerHour: 1000,
  lease: { defaultSec: 600, maxSec: 1200 },
});
const parsed = parseRuleFile({
  version: 1,
  ownership: { namePrefixes: ['ilb-'] },
  tiers: { a: tier('ilb-a'), b: tier('ilb-b'), c: tier('ilb-c'), d: tier('ilb-d'), e: tier('ilb-e') },
});
if (!parsed.ok) throw new Error(parsed.reason);
const rules = parsed.rules;

/** A policy the publisher may name that does not exist. */
const forgedCondition = `projects/${project}/alertPolicies/4242424242/conditions/1`;

/** A forged (or real) notification as a publisher sends it: every field is the publisher's choice. */
const message = (opts: {
  id: string;
  state: 'open' | 'closed';
  labels: Record<string, string>;
  condition?: string;
  endedAt?: number;
}): Json => notification({ ...opts, zone, project, condition: opts.condition ?? forgedCondition });

const alertPolicy = (labels: Record<string, string>, enabled = true) =>
  supportPolicy(emu.url, labels, { enabled });

function handler(now?: () => number) {
  const config = loadConfig({
    CONSUL_HTTP_ADDR: consul.httpAddr,
    CONSUL_HTTP_TOKEN: token,
    COMPUTE_API_ENDPOINT: emu.url,
    GOOGLE_CLOUD_PROJECT: project,
  });
  const alerts = { rules, metrics: false, operationTimeoutMs: 20_000, maxAttempts: 5 };
  return scalingAlertsFromConfig(config, alerts, {
    logger: createLogger({ name: 'forged-incidents', level: 'silent' }),
    metrics: noMetrics,
    now,
    retryDelayMs: 50,
    scheduleCheck: { boundMs: 0, intervalMs: 1 },
  });
}

async function policyOf(name: string) {
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: name });
  return {
    min: a.autoscalingPolicy?.minNumReplicas,
    schedules: Object.keys(a.autoscalingPolicy?.scalingSchedules ?? {}),
  };
}

const unchanged = { min: 1, schedules: [] };
const kvKey = (name: string) =>
  `gce-ilb-orchestrator/scaling-alerts/autoscalers/projects/${project}/zones/${zone}/autoscalers/${name}`;

beforeAll(async () => {
  // The test emulator, with Monitoring's alert policies (nothing is evaluated: incidents are forged).
  emu = await startComputeEmulator({
    project,
    zones,
    driver: new ProcessDriver(instanceCommand),
    logger: createLogger({ name: 'forged-incidents-emulator', level: 'warn' }),
    operationDelayMs: 50,
    reconcileIntervalMs: 300,
    autoscaleIntervalMs: 3_600_000,
    alerting: { publish: () => Promise.resolve(), evaluateIntervalMs: 3_600_000 },
  });
  emu.emulator.addTemplate('backend-tmpl', { machineType: 'e2-small', labels: { role: 'backend' } });
  c = clients(emu.port);
  consul = await startConsulDev();
  token = await functionToken(consul);
  for (const name of ['ilb-a', 'ilb-b', 'ilb-c', 'ilb-d', 'ilb-e']) await autoscaledGroup(c, name);
}, 120_000);

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

test('a forged incident naming a policy that does not exist, or none, changes no floor', async () => {
  const handle = handler();
  const labels = { tier: 'a', action: 'raise-min' };
  await handle(message({ id: '0.forged-a1', state: 'open', labels }));
  const noCondition = message({ id: '0.forged-a2', state: 'open', labels });
  const body = JSON.parse(
    Buffer.from((noCondition.message as { data: string }).data, 'base64').toString(),
  ) as { incident: Json };
  delete body.incident.condition;
  await handle({ message: { data: Buffer.from(JSON.stringify(body)).toString('base64'), messageId: 'x' } });
  expect(await policyOf('ilb-a')).toEqual(unchanged);
});

test('a forged incident naming a real policy with other labels changes no floor', async () => {
  const condition = await alertPolicy({ tier: 'b', team: 'web' });
  await handler()(
    message({ id: '0.forged-b', state: 'open', labels: { tier: 'b', action: 'raise-min' }, condition }),
  );
  expect(await policyOf('ilb-b')).toEqual(unchanged);
});

test('a forged incident naming a disabled policy with the right labels changes no floor', async () => {
  const condition = await alertPolicy({ tier: 'c', action: 'raise-min' }, false);
  await handler()(
    message({ id: '0.forged-c', state: 'open', labels: { tier: 'c', action: 'raise-min' }, condition }),
  );
  expect(await policyOf('ilb-c')).toEqual(unchanged);
});

test('thousands of forged closes keep the record bounded; a later real close still reverts', async () => {
  const labels = { tier: 'd', action: 'raise-min' };
  const condition = await alertPolicy(labels);
  const handle = handler();
  await handle(message({ id: '0.real-d', state: 'open', labels, condition }));
  expect((await policyOf('ilb-d')).schedules).toHaveLength(1);

  const far = Math.floor(Date.now() / 1000) + 10 * 365 * 86_400;
  // 3,700 such closes pushed the record past Consul's value limit before it was bounded (each
  // close costs 80-150 ms here); 600 already exceed the bound below (FORGED_CLOSES sets the count).
  const count = Number(process.env.FORGED_CLOSES ?? 600);
  let failures = 0;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const id = `0.f${String(i).padStart(6, '0')}${'x'.repeat(118)}`;
    // Half claim to end ten years from now, so that no age bound would ever drop them.
    const endedAt = i % 2 ? far : undefined;
    await handle(message({ id, state: 'closed', labels, condition, endedAt })).catch(() => failures++);
  }
  const record = await consul.agent.consul.kv.get(kvKey('ilb-d'));
  const bytes = Buffer.byteLength(record?.value ?? '');
  console.log(
    `forged closes: ${count} in ${Math.round(performance.now() - started)} ms, ${failures} failed, record ${bytes} bytes`,
  );
  expect(bytes).toBeLessThan(64 * 1024);
  expect(failures).toBe(0);

  await handle(message({ id: '0.real-d', state: 'closed', labels, condition }));
  expect((await policyOf('ilb-d')).schedules).toEqual([]);
  expect(Object.keys((await readRecord(consul.agent.consul, kvKey('ilb-d')))?.leases ?? {})).toEqual([]);
}, 600_000);

test('a stream of new incident ids for a real policy does not extend a lease past its maximum', async () => {
  const labels = { tier: 'e', action: 'raise-min' };
  const condition = await alertPolicy(labels);
  const t0 = Date.now();
  let now = t0;
  const handle = handler(() => now);
  // The default maximum lifetime: four of the tier's longest leases (1200 s) from the first opening.
  const maxLifetimeMs = 4 * 1200 * 1000;
  const decisions: string[] = [];
  let latest = 0;
  for (let k = 0; k <= 12; k++) {
    now = t0 + k * 500_000;
    const out = await handle(message({ id: `0.stream-${k}`, state: 'open', labels, condition }));
    decisions.push('results' in out ? (out.results[0]?.decision ?? '-') : out.decision);
    const record = await readRecord(consul.agent.consul, kvKey('ilb-e'));
    const leases = Object.values((record?.leases ?? {}) as Record<string, { expiresAt: number }>);
    latest = Math.max(latest, ...leases.map((l) => l.expiresAt));
  }
  console.log(
    `new-id stream: decisions ${decisions.join(',')}; the last lease ends ${(latest - t0) / 1000} s after the first opened`,
  );
  expect(latest).toBeLessThanOrEqual(t0 + maxLifetimeMs);
  expect(decisions.at(-1)).toBe('refused');
}, 300_000);
