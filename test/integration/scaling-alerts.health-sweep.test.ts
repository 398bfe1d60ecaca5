import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { composeHealthSweep, loadHealthSweepSettings } from '../../functions/health-sweep/compose';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { createLogger } from '../../shared/logging';
import { stateKey } from '../../shared/scaling-alerts/state';
import type { RunningEmulator } from '../../infra-scripts/local/compute-emulator';
import { startConsulCluster, type ConsulAgent, type ConsulCluster } from '../harness';
import { clients, project, startTestEmulator, zones } from './compute-emulator-helpers';
import { sweepToken } from './health-sweep.support';
import { testRules } from './scaling-alerts.support';

/**
 * healthSweep (functions/health-sweep) runs scalingAlerts' lease pass after its node sweep when
 * SCALING_RULES_JSON is set:
 * with its policy (infra-scripts/acl/health-sweep.hcl holds the scaling-alerts KV rule) an expired
 * lease is reverted; a token without that rule makes the pass fail (403) and the node sweep still
 * completes.
 */
const zone = zones[0]!;
const kvPrefix = 'gce-ilb-orchestrator/';
const ref = { project, zone, name: 'ilb-haproxy' };
let cluster: ConsulCluster;
let server: ConsulAgent;
let admin: ConsulClient;
let emu: RunningEmulator;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1 });
  server = cluster.servers[0] as ConsulAgent;
  admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: server.httpAddr, CONSUL_HTTP_TOKEN: cluster.token }).consul,
  );
  ({ emu } = await startTestEmulator());
  c = clients(emu.port);
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
  // An autoscaler as a lease left it: CPU target lowered to 0.5 from 0.7, the lease long expired.
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
        cpuUtilization: { utilizationTarget: 0.5 },
      },
    },
  });
}, 60_000);

afterAll(async () => {
  await c?.close();
  await emu?.stop();
  await cluster?.stop();
});

async function seedExpiredLease() {
  const granted = Date.now() - 3 * 3600_000;
  const record = {
    leases: {
      '0.old1': {
        incidentId: '0.old1',
        rule: 'default',
        tier: 'haproxy',
        change: { type: 'cpu-target', target: 0.5 },
        grantedAt: granted,
        expiresAt: granted + 600_000,
        generation: 0,
      },
    },
    closed: {},
    original: { cpuTarget: 0.7 },
    changes: [],
  };
  const key = stateKey(kvPrefix, ref);
  const cur = await admin.kv.get(key);
  await admin.kv.cas(key, JSON.stringify(record), cur?.modifyIndex ?? 0);
}

function sweep(token: string) {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    name: 'healthSweep',
    destination: new Writable({
      write(chunk: Buffer, _e, done) {
        logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  });
  // healthSweep's environment, composed as functions/health-sweep composes it.
  const settings = loadHealthSweepSettings({
    CONSUL_HTTP_ADDR: server.httpAddr,
    CONSUL_HTTP_TOKEN: token,
    COMPUTE_API_ENDPOINT: emu.url,
    GOOGLE_CLOUD_PROJECT: project,
    HEALTH_SWEEP_CONFIG_JSON: JSON.stringify({
      groups: [{ project, zone, name: 'ilb-haproxy-mig', role: 'backend' }],
      thresholds: { absentSweeps: 3, bootGraceSeconds: 3600 },
    }),
    SCALING_RULES_JSON: JSON.stringify(testRules(project, zone, { names: ['ilb-haproxy'] })),
  });
  const built = composeHealthSweep(settings, { logger });
  return { built, logs };
}

async function cpuTarget() {
  const [a] = await c.autoscalers.get({ project, zone, autoscaler: 'ilb-haproxy' });
  return a.autoscalingPolicy?.cpuUtilization?.utilizationTarget;
}

test('without the scaling-alerts KV rule the lease pass fails and the node sweep completes anyway', async () => {
  // health-sweep.hcl without its last block, the scaling-alerts rule.
  const full = readFileSync(path.join(__dirname, '../../infra-scripts/acl/health-sweep.hcl'), 'utf8');
  const withoutLeases = full.replace(
    /key_prefix "gce-ilb-orchestrator\/scaling-alerts\/autoscalers\/" \{[^}]*\}/,
    '',
  );
  expect(withoutLeases).not.toEqual(full);
  const acl = server.consul.acl;
  await acl.createPolicy('health-sweep-without-leases', withoutLeases);
  const token = await acl.createToken({ policies: ['health-sweep-without-leases'] });
  await seedExpiredLease();
  const { built, logs } = sweep(token);
  const result = await built.run({ dryRun: false });
  await built.close();
  expect(result.status).toBe('completed');
  expect(
    logs.some((l) => l.decision === 'failed' && /403|Permission denied|ACL/i.test(String(l.reason))),
  ).toBe(true);
  expect(await cpuTarget()).toBe(0.5);
});

test('with its own policy, the sweep reverts the expired lease', async () => {
  const token = await sweepToken(server);
  const { built, logs } = sweep(token);
  const result = await built.run({ dryRun: false });
  await built.close();
  expect(result.status).toBe('completed');
  expect(logs).toEqual(
    expect.arrayContaining([expect.objectContaining({ decision: 'applied', reason: 'revert' })]),
  );
  expect(await cpuTarget()).toBe(0.7);
});
