import { createHash } from 'node:crypto';
import { topicFunctions, type TopicFunctionName } from '../../../functions/catalog';
import type { ResolvedConfig } from '../config';

export const APP_LABEL = 'gce-ilb-orchestrator';
export const roles = ['consul', 'haproxy', 'backend', 'frontend'] as const;
export type Role = (typeof roles)[number];
/**
 * The client tiers whose VMs held a shared role write token before they logged in with their own
 * identity: Consul token `ilb-<role> agent token` (policy `ilb-<role>`), secret
 * `consul-agent-token-<role>`. An upgraded deployment still has them until the deploy retires them.
 */
export const legacyTokenRoles = ['backend', 'haproxy', 'frontend'] as const;

/** A name's content hash: a changed content gets a new name (templates) or a new label (functions). */
export const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 10);

/** host number n of a CIDR range, e.g. (10.10.0.0/20, 10) → 10.10.0.10 */
export function hostAddress(cidr: string, n: number): string {
  const [ip = '', bits = '32'] = cidr.split('/');
  const base = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  if (n <= 0 || n >= size - 1) throw new Error(`host ${n} is outside ${cidr}`);
  const mask = size === 2 ** 32 ? 0 : Math.floor(base / size) * size;
  const v = mask + n;
  return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
}

/** Names of everything the deployment creates, derived from the config alone. */
export function names(c: ResolvedConfig) {
  const d = c.deployment;
  const sa = (id: string) => `${d}-${id}@${c.project}.iam.gserviceaccount.com`;
  const fnSaId = (f: TopicFunctionName) => topicFunctions[f].serviceAccount;
  return {
    network: `${d}-net`,
    subnet: `${d}-${c.region}`,
    fnSubnet: `${d}-fn-egress`,
    router: `${d}-router`,
    nat: `${d}-nat`,
    roleSa: (r: Role) => sa(r),
    fnSaId,
    fnSa: (f: TopicFunctionName) => sa(fnSaId(f)),
    /** The identity Cloud Build builds the functions as (`--build-service-account`). */
    buildSaId: 'fn-build',
    buildSa: sa('fn-build'),
    /** Pub/Sub's service agent (the project number is known once the project is looked up). */
    pubsubAgent: 'serviceAccount:service-@{projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com',
    customRole: (f: TopicFunctionName) => `${d.replace(/-/g, '_')}_${f}`,
    /** A function's Consul policy is named as its service account. */
    fnPolicy: fnSaId,
    consulServer: (i: number) => `consul-${d}-${i}`,
    consulAddressName: (i: number) => `${d}-consul-${i}`,
    consulIp: (i: number) => hostAddress(c.network.cidr, 10 + i),
    frontendAddress: `${d}-frontend`,
    healthCheck: (r: Role) => `${d}-${r}-hc`,
    mig: (r: Role) => `${d}-${r}`,
    baseInstanceName: (r: Role) => `${r}-${d}`,
    sink: `${d}-instance-events`,
    channel: `${d} scaling-alerts`,
    scheduler: `${d}-health-sweep`,
    /** The Cloud Run service behind a gen2 function: its entry point's name, lowercase. */
    fnService: (entry: string) => entry.toLowerCase(),
    agentToken: (policy: string) => `consul-agent-token-${policy}`,
    fnToken: (f: TopicFunctionName) => `consul-token-${fnSaId(f)}`,
    fnForceLeaveToken: (f: TopicFunctionName) => `consul-token-${fnSaId(f)}-force-leave`,
  };
}

export type Names = ReturnType<typeof names>;
