/**
 * What the healthSweep integration tests share: a real Consul (ACLs on, the function's token from
 * its policy file), the Compute emulator with real processes behind its groups, and catalog nodes
 * registered for the groups' members as their agents would.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../shared/config';
import { createConsulClient, type ConsulClient } from '../../shared/consul';
import { nodeMetaKeys, services } from '../../shared/contract';
import { parseHealthSweepConfig, type HealthSweepConfig } from '../../shared/health-sweep/config';
import { healthSweepKeys } from '../../shared/health-sweep/state';
import { healthSweepFromConfig } from '../../shared/health-sweep/wire';
import { createLogger } from '../../shared/logging';
import type { ConsulAgent } from '../harness';

export const policyFile = path.resolve(__dirname, '../../infra-scripts/acl/health-sweep.hcl');
export const forceLeavePolicyFile = path.resolve(__dirname, '../../infra-scripts/acl/force-leave.hcl');
export const keys = healthSweepKeys('gce-ilb-orchestrator/');

/** Creates the health-sweep policy from its file and a token holding only it. */
export async function sweepToken(server: ConsulAgent): Promise<string> {
  await server.consul.acl.createPolicy('health-sweep', readFileSync(policyFile, 'utf8'));
  return server.consul.acl.createToken({ policies: ['health-sweep'] });
}

/** The separately held force-leave token, from the shared force-leave policy file. */
export async function forceLeaveToken(server: ConsulAgent): Promise<string> {
  await server.consul.acl.createPolicy('force-leave', readFileSync(forceLeavePolicyFile, 'utf8'));
  return server.consul.acl.createToken({ policies: ['force-leave'] });
}

export interface Member {
  name: string;
  id: string;
  zone: string;
  group: string;
  role: string;
}

export const identity = (m: Member, project: string) => ({
  [nodeMetaKeys.instanceId]: m.id,
  [nodeMetaKeys.zone]: m.zone,
  [nodeMetaKeys.project]: project,
  [nodeMetaKeys.group]: m.group,
  [nodeMetaKeys.role]: m.role,
});

/** A catalog node with identity metadata and a service whose check has `status`. */
export async function registerMember(
  admin: ConsulClient,
  m: Member,
  project: string,
  status: 'passing' | 'critical' = 'passing',
): Promise<void> {
  await admin.catalog.register({
    node: m.name,
    address: '10.201.0.1',
    nodeMeta: identity(m, project),
    service: { id: services.backend.name, service: services.backend.name, port: services.backend.port },
    check: { checkId: 'service:backend', name: 'backend', status, serviceId: services.backend.name },
  });
}

export function sweepConfig(
  project: string,
  groups: Array<{ zone?: string; region?: string; name: string; role: string }>,
  thresholds: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): HealthSweepConfig {
  return parseHealthSweepConfig({
    groups: groups.map((g) => ({ project, ...g })),
    thresholds: { absentSweeps: 3, bootGraceSeconds: 3600, ...thresholds },
    // These members are catalog entries, not agents: the identity check would remove them
    // (test/attack/sweep-identity.test.ts runs it against real agents).
    identity: { removeUnproven: false },
    ...extra,
  });
}

export type LogLine = Record<string, unknown>;

/** The sweep as the function builds it, against this Consul and emulator, logging into `logs`. */
export function buildSweep(options: {
  consulAddr: string;
  token: string;
  /** CONSUL_FORCE_LEAVE_TOKEN; without it the sweep does not force-leave. */
  forceLeaveToken?: string;
  computeUrl: string;
  config: HealthSweepConfig;
  logs: LogLine[];
  lookupLimit?: number;
  wrap?: (c: ConsulClient) => ConsulClient;
  now?: () => number;
}) {
  const env = loadConfig({
    CONSUL_HTTP_ADDR: options.consulAddr,
    CONSUL_HTTP_TOKEN: options.token,
    ...(options.forceLeaveToken ? { CONSUL_FORCE_LEAVE_TOKEN: options.forceLeaveToken } : {}),
    COMPUTE_API_ENDPOINT: options.computeUrl,
    ORCHESTRATOR_CONSUL_TIMEOUT_MS: '2000',
  });
  const client = createConsulClient(env.consul);
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      options.logs.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  return healthSweepFromConfig(env, options.config, {
    logger: createLogger({ name: 'healthSweep', destination }),
    consul: options.wrap ? options.wrap(client) : client,
    lockTtlSeconds: 10,
    ...(options.lookupLimit !== undefined ? { lookupLimit: options.lookupLimit } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}
