import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { createAutoscalers, type AutoscalersPort } from '../../shared/gcp/autoscalers';
import { createGcpClients } from '../../shared/gcp/client';
import type { MetricsWriter } from '../../shared/gcp/monitoring';
import { createLogger } from '../../shared/logging';
import type { ScalingAlertsConfig } from '../../shared/scaling-alerts/config';
import { parseRuleFile, type RuleFile } from '../../shared/scaling-alerts/rules';
import type { ScheduleCheck } from '../../shared/scaling-alerts/schedule';
import { leaseSweepFromConfig, scalingAlertsFromConfig } from '../../shared/scaling-alerts/wire';
import { eventFixture } from '../fixtures/events';
import type { ConsulDev } from '../harness';
import { clients, project, zones } from './compute-emulator-helpers';

type Json = Record<string, unknown>;

const policyFile = path.join(__dirname, '../../infra-scripts/acl/scaling-alerts.hcl');

/** A token with exactly the function's ACL policy. */
export async function functionToken(consul: ConsulDev): Promise<string> {
  const acl = consul.agent.consul.acl;
  await acl.createPolicy('scaling-alerts', readFileSync(policyFile, 'utf8'));
  return acl.createToken({ policies: ['scaling-alerts'] });
}

/** A rule file for the emulator's project: by default one owned haproxy autoscaler and one not owned. */
export function testRules(
  project: string,
  zone: string,
  opts: { names?: string[]; ownership?: Json } = {},
): RuleFile {
  const names = opts.names ?? ['ilb-haproxy', 'foreign-haproxy'];
  const parsed = parseRuleFile({
    version: 1,
    ownership: opts.ownership ?? { namePrefixes: ['ilb-'] },
    schedulePrefix: 'ilb-incident-',
    tiers: {
      haproxy: {
        autoscalers: names.map((name) => ({ project, zone, name })),
        floor: 1,
        ceiling: 5,
        maxStep: 3,
        cooldownSec: 0,
        maxChangesPerHour: 100,
        lease: { defaultSec: 600, maxSec: 3600 },
        targets: { cpu: { min: 0.4, max: 0.8 }, maxRelativeStep: 0.3 },
        scaleIn: { minFixed: 0, maxTimeWindowSec: 1800 },
        allowModeChange: true,
      },
    },
  });
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.rules;
}

/** Monitoring's alert policies in the test emulator, never evaluated: the tests write the notifications. */
export const policiesOnly = { publish: () => Promise.resolve(), evaluateIntervalMs: 3_600_000 };

/** Creates an alert policy in the emulator (started with `alerting`); resolves to its condition's name. */
export async function alertPolicy(
  emuUrl: string,
  labels: Record<string, string>,
  opts: { enabled?: boolean; project?: string } = {},
): Promise<string> {
  const res = await fetch(`${emuUrl}/v3/projects/${opts.project ?? project}/alertPolicies`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      displayName: `policy-${Object.values(labels).join('-')}`,
      userLabels: labels,
      enabled: opts.enabled ?? true,
      conditions: [
        {
          displayName: 'request rate',
          conditionThreshold: {
            filter:
              'metric.type="custom.googleapis.com/ilb/haproxy/request_rate" resource.type="gce_instance"',
            comparison: 'COMPARISON_GT',
            thresholdValue: 800,
            duration: '60s',
          },
        },
      ],
    }),
  });
  if (!res.ok) throw new Error(`alert policy: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { conditions: { name: string }[] }).conditions[0]!.name;
}

/** One policy per action of the default rule (`tier=<tier>`, `action=<action>`): action → condition name. */
export async function actionPolicies(emuUrl: string, tier: string): Promise<Record<string, string>> {
  const actions = ['raise-min', 'lower-cpu-target', 'lower-lb-target', 'hold-scale-in', 'scale-out-only'];
  const out: Record<string, string> = {};
  for (const action of actions) out[action] = await alertPolicy(emuUrl, { tier, action });
  return out;
}

let seq = 0;
/**
 * A schema 1.2 notification (from the fixture), wrapped as the CloudEvent's Pub/Sub message;
 * `condition` names the alert policy's condition that confirms it.
 */
export function notification(opts: {
  id: string;
  state: 'open' | 'closed';
  /** The labels the message claims: `tier=haproxy, action=<action>` unless `labels` are given. */
  action?: string;
  labels?: Record<string, string>;
  zone: string;
  project: string;
  condition: string;
  startedAt?: number;
  endedAt?: number;
}): Json {
  const body = eventFixture<{ incident: Json }>(
    opts.state === 'open' ? 'monitoring-incident-open.json' : 'monitoring-incident-closed.json',
  );
  const startedAt = opts.startedAt ?? Math.floor(Date.now() / 1000) - 60;
  Object.assign(body.incident, {
    incident_id: opts.id,
    state: opts.state,
    started_at: startedAt,
    ended_at: opts.state === 'closed' ? (opts.endedAt ?? startedAt + 30) : null,
    policy_name: 'test-policy',
    policy_user_labels: opts.labels ?? { tier: 'haproxy', action: opts.action ?? 'raise-min' },
    scoping_project_id: opts.project,
    resource: {
      type: 'gce_instance',
      labels: { instance_id: '1', project_id: opts.project, zone: opts.zone },
    },
    condition: { ...(body.incident.condition as Json), name: opts.condition },
  });
  return {
    message: { data: Buffer.from(JSON.stringify(body)).toString('base64'), messageId: String(++seq) },
  };
}

export interface Harness {
  handle: ReturnType<typeof scalingAlertsFromConfig>;
  logs: Json[];
  admin: ConsulClient;
}

/** The handler wired as the function wires it, with the function's token; logs captured. */
export function buildHandler(opts: {
  consul: ConsulDev;
  token: string;
  computeUrl: string;
  project: string;
  rules: RuleFile;
  env?: Record<string, string>;
  autoscalers?: (real: AutoscalersPort) => AutoscalersPort;
  metrics?: MetricsWriter;
  scheduleCheck?: ScheduleCheck;
}): Harness {
  const config = loadConfig({
    CONSUL_HTTP_ADDR: opts.consul.httpAddr,
    CONSUL_HTTP_TOKEN: opts.token,
    COMPUTE_API_ENDPOINT: opts.computeUrl,
    GOOGLE_CLOUD_PROJECT: opts.project,
    ...opts.env,
  });
  const alerts: ScalingAlertsConfig = {
    rules: opts.rules,
    metrics: true,
    operationTimeoutMs: 20_000,
    maxAttempts: 5,
  };
  const logs: Json[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(JSON.parse(chunk.toString()) as Json);
      done();
    },
  });
  const logger = createLogger({ name: 'scalingAlerts', destination });
  const autoscalers = opts.autoscalers?.(
    createAutoscalers(createGcpClients(config.compute), { operationTimeoutMs: 20_000 }),
  );
  const handle = scalingAlertsFromConfig(config, alerts, {
    logger,
    autoscalers,
    metrics: opts.metrics,
    retryDelayMs: 100,
    scheduleCheck: opts.scheduleCheck,
  });
  const admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: opts.consul.httpAddr, CONSUL_HTTP_TOKEN: opts.consul.token }).consul,
  );
  return { handle, logs, admin };
}

type ComputeClients = ReturnType<typeof clients>;

/** A group of one instance and its autoscaler (min 1, max 5, CPU 0.7) in the emulator's first zone. */
export async function autoscaledGroup(c: ComputeClients, name: string, template = 'backend-tmpl') {
  const zone = zones[0]!;
  await c.igms.insert({
    project,
    zone,
    instanceGroupManagerResource: {
      name: `${name}-mig`,
      baseInstanceName: name,
      instanceTemplate: `global/instanceTemplates/${template}`,
      targetSize: 1,
    },
  });
  await c.autoscalers.insert({
    project,
    zone,
    autoscalerResource: {
      name,
      target: `projects/${project}/zones/${zone}/instanceGroupManagers/${name}-mig`,
      autoscalingPolicy: {
        minNumReplicas: 1,
        maxNumReplicas: 5,
        coolDownPeriodSec: 0,
        mode: 'ON',
        cpuUtilization: { utilizationTarget: 0.7 },
      },
    },
  });
}

/** Modifying operations (patch, update) on an autoscaler of the emulator's first zone so far. */
export async function modifications(c: ComputeClients, name: string): Promise<number> {
  const [ops] = await c.zoneOps.list({ project, zone: zones[0]! });
  return ops.filter(
    (o) =>
      (o.targetLink ?? '').endsWith(`/autoscalers/${name}`) &&
      (o.operationType === 'patch' || o.operationType === 'update'),
  ).length;
}

/** scalingAlerts' record of an autoscaler, as stored. */
export async function readRecord(admin: ConsulClient, key: string) {
  const entry = await admin.kv.get(key);
  return entry ? (JSON.parse(entry.value) as Record<string, Record<string, unknown>>) : null;
}

/** healthSweep's lease pass as wired from the configuration, with the function's token; silent. */
export function buildLeaseSweep(opts: {
  consul: ConsulDev;
  token: string;
  computeUrl: string;
  rules: RuleFile;
  now?: () => number;
  scheduleCheck?: ScheduleCheck;
  /** Publish the pass's metrics (the groups' creation errors) to the emulator's Monitoring. */
  metrics?: boolean;
}) {
  const config = loadConfig({
    CONSUL_HTTP_ADDR: opts.consul.httpAddr,
    CONSUL_HTTP_TOKEN: opts.token,
    COMPUTE_API_ENDPOINT: opts.computeUrl,
    GOOGLE_CLOUD_PROJECT: project,
  });
  const alerts = {
    rules: opts.rules,
    metrics: opts.metrics ?? false,
    operationTimeoutMs: 20_000,
    maxAttempts: 3,
  };
  const logger = createLogger({ name: 'lease-sweep-test', level: 'silent' });
  return leaseSweepFromConfig(config, alerts, { logger, now: opts.now, scheduleCheck: opts.scheduleCheck });
}
