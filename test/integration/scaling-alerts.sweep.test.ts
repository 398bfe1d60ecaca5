import { loadConfig } from '../../shared/config';
import { createConsulClient } from '../../shared/consul';
import { createLogger } from '../../shared/logging';
import { stateKey } from '../../shared/scaling-alerts/state';
import { leaseSweepFromConfig } from '../../shared/scaling-alerts/wire';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { startConsulDev, type ConsulDev } from '../harness';
import { clients, project, startTestEmulator, zones } from './compute-emulator-helpers';
import {
  actionPolicies,
  buildHandler,
  functionToken,
  notification,
  policiesOnly,
  testRules,
  type Harness,
} from './scaling-alerts.support';

/**
 * healthSweep's lease pass against the Compute emulator (real client) and Consul with the
 * scaling-alerts token: expired leases are reverted (the floor's schedule removed, the CPU target
 * restored), the pass is idempotent, and an autoscaler that is gone does not stop the others.
 */
const zone = zones[0]!;
const kvPrefix = 'gce-ilb-orchestrator/';
let emu: RunningEmulator;
let c: ReturnType<typeof clients>;
let consul: ConsulDev;
let token: string;
let h: Harness;
let conditions: Record<string, string> = {};

const rules = () => testRules(project, zone, { names: ['ilb-gone', 'ilb-haproxy'] });

beforeAll(async () => {
  ({ emu } = await startTestEmulator({ alerting: policiesOnly }));
  conditions = await actionPolicies(emu.url, 'haproxy');
  c = clients(emu.port);
  consul = await startConsulDev();
  token = await functionToken(consul);
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: 'ilb-haproxy-mig',
      baseInstanceName: 'ilb-haproxy',
      instanceTemplate: 'global/instanceTemplates/backend-tmpl',
      targetSize: 1,
    },
  });
  await c.autoscalers.insert({
    project,
    zone,
    autoscalerResource: {
      name: 'ilb-haproxy',
      target: `projects/${project}/zones/${zone}/instanceGroupManagers/ilb-haproxy-mig`,
      autoscalingPolicy: {
        minNumReplicas: 1,
        maxNumReplicas: 5,
        mode: 'ON',
        cpuUtilization: { utilizationTarget: 0.7 },
      },
    },
  });
  h = buildHandler({ consul, token, computeUrl: emu.url, project, rules: rules() });
}, 60_000);

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await consul?.stop();
});

async function policy() {
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'ilb-haproxy' });
  return a.autoscalingPolicy ?? {};
}

test('expired leases are reverted by the pass; a second pass changes nothing; a missing autoscaler is reported', async () => {
  const open = (id: string, action: string) =>
    h.handle(notification({ id, state: 'open', action, zone, project, condition: conditions[action]! }));
  // The handler acts on both autoscalers the rules name; the one that does not exist is refused.
  await open('0.sweep1', 'raise-min');
  await open('0.sweep2', 'lower-cpu-target');
  const leased = await policy();
  expect(Object.keys(leased.scalingSchedules ?? {})).toHaveLength(1);
  expect(leased.cpuUtilization?.utilizationTarget).toBeLessThan(0.7);
  // A forged record for the autoscaler that is gone: the pass reports it and goes on.
  const admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_HTTP_TOKEN: consul.token }).consul,
  );
  await admin.kv.cas(
    stateKey(kvPrefix, { project, zone, name: 'ilb-gone' }),
    JSON.stringify({ leases: {} }),
    0,
  );

  const config = loadConfig({
    CONSUL_HTTP_ADDR: consul.httpAddr,
    CONSUL_HTTP_TOKEN: token,
    COMPUTE_API_ENDPOINT: emu.url,
    GOOGLE_CLOUD_PROJECT: project,
  });
  const alerts = { rules: rules(), metrics: false, operationTimeoutMs: 20_000, maxAttempts: 3 };
  const logger = createLogger({ name: 'lease-sweep-test', level: 'silent' });
  // Within the lease: nothing to do.
  const early = await leaseSweepFromConfig(config, alerts, { logger })({ dryRun: false });
  expect(early.filter((o) => o.decision === 'applied')).toEqual([]);

  const later = Date.now() + 2 * 3600_000;
  const sweep = leaseSweepFromConfig(config, alerts, { logger, now: () => later });
  const dry = await sweep({ dryRun: true });
  expect(dry).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ autoscaler: expect.stringMatching(/ilb-haproxy$/), decision: 'planned' }),
    ]),
  );
  expect((await policy()).cpuUtilization?.utilizationTarget).toBeLessThan(0.7);

  const first = await sweep({ dryRun: false });
  expect(first).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ autoscaler: expect.stringMatching(/ilb-gone$/), decision: 'skipped' }),
      expect.objectContaining({
        autoscaler: expect.stringMatching(/ilb-haproxy$/),
        decision: 'applied',
        reason: 'revert',
      }),
    ]),
  );
  const after = await policy();
  expect(after.cpuUtilization?.utilizationTarget).toBe(0.7);
  expect(Object.keys(after.scalingSchedules ?? {})).toEqual([]);
  const record = JSON.parse(
    (await admin.kv.get(stateKey(kvPrefix, { project, zone, name: 'ilb-haproxy' })))!.value,
  ) as {
    leases: Record<string, unknown>;
    original: Record<string, unknown>;
  };
  expect(record.leases).toEqual({});
  expect(record.original).toEqual({});

  const second = await sweep({ dryRun: false });
  expect(second.filter((o) => o.decision === 'applied')).toEqual([]);
});
