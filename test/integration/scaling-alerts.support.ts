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
import { scalingAlertsFromConfig } from '../../shared/scaling-alerts/wire';
import { eventFixture } from '../fixtures/events';
import type { ConsulDev } from '../harness';

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

let seq = 0;
/** A schema 1.2 notification (from the fixture), wrapped as the CloudEvent's Pub/Sub message. */
export function notification(opts: {
  id: string;
  state: 'open' | 'closed';
  action: string;
  zone: string;
  project: string;
  startedAt?: number;
}): Json {
  const body = eventFixture<{ incident: Json }>(
    opts.state === 'open' ? 'monitoring-incident-open.json' : 'monitoring-incident-closed.json',
  );
  const startedAt = opts.startedAt ?? Math.floor(Date.now() / 1000) - 60;
  Object.assign(body.incident, {
    incident_id: opts.id,
    state: opts.state,
    started_at: startedAt,
    ended_at: opts.state === 'closed' ? startedAt + 30 : null,
    policy_name: 'test-policy',
    policy_user_labels: { tier: 'haproxy', action: opts.action },
    scoping_project_id: opts.project,
    resource: {
      type: 'gce_instance',
      labels: { instance_id: '1', project_id: opts.project, zone: opts.zone },
    },
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
  });
  const admin = createConsulClient(
    loadConfig({ CONSUL_HTTP_ADDR: opts.consul.httpAddr, CONSUL_HTTP_TOKEN: opts.consul.token }).consul,
  );
  return { handle, logs, admin };
}
