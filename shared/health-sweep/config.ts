import { z } from 'zod';
import { ConfigError, readJsonSetting } from '../settings';

/**
 * Configuration of healthSweep: the groups it watches and the limits it acts within. A JSON
 * document (example with every field explained: infra-scripts/config/health-sweep.example.json).
 * Every limit errs on the side of doing less: an omitted threshold takes a conservative default.
 */

/** A count of instances, or a percentage of a group's listed members (`"25%"`). */
export type Budget = { kind: 'count'; count: number } | { kind: 'percent'; percent: number };

const budgetSchema = z
  .union([
    z.number().int().min(0).max(10_000),
    z.string().regex(/^(100|[1-9]?[0-9])%$/, 'a whole percentage from 0% to 100%'),
  ])
  .transform((v): Budget =>
    typeof v === 'number'
      ? { kind: 'count', count: v }
      : { kind: 'percent', percent: Number(v.slice(0, -1)) },
  );

// Google's naming rules (RFC 1035 labels); the names end up in API paths and KV keys.
const resourceName = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Compute resource name');
const projectId = z.string().regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'a project id');
export const zonePattern = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;
const zoneName = z.string().regex(zonePattern, 'a zone such as us-central1-a');
const regionName = z.string().regex(/^[a-z]+-[a-z]+[0-9]+$/, 'a region such as us-central1');
export const rolePattern = /^[a-z][a-z0-9-]{0,62}$/;

const groupFields = {
  project: projectId,
  name: resourceName,
  /** The `role` node metadata of the group's instances (backend, haproxy, frontend). */
  role: z.string().regex(rolePattern, 'a role name'),
  /** Overrides of the thresholds' values for this group. */
  maxRecreations: budgetSchema.optional(),
  healthyMinimum: budgetSchema.optional(),
};
const zonalGroupSchema = z.strictObject({ ...groupFields, zone: zoneName });
const regionalGroupSchema = z.strictObject({ ...groupFields, region: regionName });

const thresholdsSchema = z.strictObject({
  /** Consecutive complete sweeps a node's instance id must be missing from every watched group. */
  absentSweeps: z.number().int().min(1).max(100).default(3),
  /** How long a node stays critical before its instance is recreated. */
  brokenGraceSeconds: z.number().int().min(0).max(86_400).default(300),
  /** How long a running instance may go without a Consul node before it counts as an orphan. */
  bootGraceSeconds: z.number().int().min(0).max(86_400).default(600),
  /** Recreations per group in one sweep; a percentage rounds down but allows at least one. */
  maxRecreations: budgetSchema.prefault(1),
  /** Members that must stay running and untouched; a percentage rounds up. */
  healthyMinimum: budgetSchema.prefault('50%'),
  /** Deregistrations and recreations together, across all groups. */
  tokenBucket: z
    .strictObject({
      ratePerMinute: z.number().positive().max(10_000).default(6),
      burst: z.number().int().min(1).max(10_000).default(10),
    })
    .prefault({}),
  /** A zone where more than this fraction of the running members look dead is only reported. */
  zoneDeadThreshold: z.number().gt(0).max(1).default(0.55),
});

/** A per-node answer's cap: under the Consul layer's own (8 MiB), over a legitimate node's. */
const perNodeCap = (fallback: number) =>
  z
    .number()
    .int()
    .min(4096)
    .max(8 * 1024 * 1024)
    .default(fallback);

const configSchema = z.strictObject({
  groups: z
    .array(z.union([zonalGroupSchema, regionalGroupSchema]))
    .min(1)
    .max(1000),
  thresholds: thresholdsSchema.prefault({}),
  /** Recreate orphans (instances that never joined Consul) instead of only reporting them. */
  repairOrphans: z.boolean().default(false),
  /** Identity checks of managed-role nodes against gossip membership (identity.ts). */
  identity: z
    .strictObject({
      /** Deregister a node of a watched role that no gossip member backs (a catalog-only entry). */
      removeUnproven: z.boolean().default(true),
      /** Findings kept per sweep (report and actions): bounded work whatever the catalog holds. */
      maxFindings: z.number().int().min(1).max(10_000).default(100),
    })
    .prefault({}),
  /**
   * When the checks of every node together are over the Consul layer's cap (8 MiB), the sweep
   * reads them node by node (read.ts): a node whose own checks are over `nodeChecksMaxBytes` is
   * reported oversized and left alone this sweep. More catalog nodes than `maxNodeReads`: the
   * sweep only reports. When the node listing itself is over the cap, the nodes are listed from
   * the gossip members, each node's entry read alone under `nodeMaxBytes` (read-fallback.ts).
   */
  reads: z
    .strictObject({
      nodeChecksMaxBytes: perNodeCap(256 * 1024),
      nodeMaxBytes: perNodeCap(64 * 1024),
      maxNodeReads: z.number().int().min(1).max(100_000).default(2000),
    })
    .prefault({}),
});

export type GroupScope = { kind: 'zone'; zone: string } | { kind: 'region'; region: string };

export interface WatchedGroup {
  /** `projects/<p>/zones/<z>/instanceGroupManagers/<name>` (or `regions/<r>`): unique. */
  key: string;
  project: string;
  name: string;
  role: string;
  scope: GroupScope;
  maxRecreations: Budget;
  healthyMinimum: Budget;
}

export interface SweepThresholds {
  absentSweeps: number;
  brokenGraceMs: number;
  bootGraceMs: number;
  tokenBucket: { ratePerMinute: number; burst: number };
  zoneDeadThreshold: number;
}

export interface HealthSweepConfig {
  groups: WatchedGroup[];
  thresholds: SweepThresholds;
  repairOrphans: boolean;
  identity: { removeUnproven: boolean; maxFindings: number };
  reads: { nodeChecksMaxBytes: number; nodeMaxBytes: number; maxNodeReads: number };
}

export const groupKey = (project: string, scope: GroupScope, name: string): string =>
  scope.kind === 'zone'
    ? `projects/${project}/zones/${scope.zone}/instanceGroupManagers/${name}`
    : `projects/${project}/regions/${scope.region}/instanceGroupManagers/${name}`;

/** The region of a zone (`us-central1-a` → `us-central1`). */
export const regionOf = (zone: string): string => zone.replace(/-[a-z]$/, '');

/** Whether an instance in `zone` can belong to a group of this scope. */
export const scopeHolds = (scope: GroupScope, zone: string): boolean =>
  scope.kind === 'zone' ? scope.zone === zone : regionOf(zone) === scope.region;

/** Validates a parsed JSON document; throws ConfigError naming every problem. */
export function parseHealthSweepConfig(input: unknown): HealthSweepConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid health-sweep configuration: ${problems.join('; ')}`);
  }
  const { groups, thresholds: t, repairOrphans, identity, reads } = parsed.data;
  const watched = groups.map((g): WatchedGroup => {
    const scope: GroupScope =
      'zone' in g ? { kind: 'zone', zone: g.zone } : { kind: 'region', region: g.region };
    return {
      key: groupKey(g.project, scope, g.name),
      project: g.project,
      name: g.name,
      role: g.role,
      scope,
      maxRecreations: g.maxRecreations ?? t.maxRecreations,
      healthyMinimum: g.healthyMinimum ?? t.healthyMinimum,
    };
  });
  const seen = new Set<string>();
  for (const g of watched) {
    if (seen.has(g.key)) throw new ConfigError(`invalid health-sweep configuration: ${g.key} listed twice`);
    seen.add(g.key);
  }
  // Node metadata names a group only by name: two watched groups whose instances could share a
  // zone and a name would make a node's group ambiguous.
  for (const a of watched) {
    for (const b of watched) {
      if (a !== b && a.project === b.project && a.name === b.name && scopesOverlap(a.scope, b.scope)) {
        throw new ConfigError(`invalid health-sweep configuration: ${a.key} and ${b.key} overlap`);
      }
    }
  }
  return {
    groups: watched,
    thresholds: {
      absentSweeps: t.absentSweeps,
      brokenGraceMs: t.brokenGraceSeconds * 1000,
      bootGraceMs: t.bootGraceSeconds * 1000,
      tokenBucket: t.tokenBucket,
      zoneDeadThreshold: t.zoneDeadThreshold,
    },
    repairOrphans,
    identity,
    reads,
  };
}

const scopesOverlap = (a: GroupScope, b: GroupScope): boolean => {
  const regionOfScope = (s: GroupScope) => (s.kind === 'zone' ? regionOf(s.zone) : s.region);
  if (a.kind === 'zone' && b.kind === 'zone') return a.zone === b.zone;
  return regionOfScope(a) === regionOfScope(b);
};

/** Resolves a budget against a group's size: `round` says which way a percentage goes. */
export function resolveBudget(budget: Budget, size: number, round: 'down-min-one' | 'up'): number {
  if (budget.kind === 'count') return budget.count;
  const exact = (budget.percent * size) / 100;
  if (round === 'up') return Math.ceil(exact);
  return budget.percent > 0 && size > 0 ? Math.max(1, Math.floor(exact)) : 0;
}

/**
 * healthSweep's document from `HEALTH_SWEEP_CONFIG_FILE` (a path, e.g. a mounted secret) or
 * `HEALTH_SWEEP_CONFIG_JSON` (inline), exactly one (infra-scripts/config/README.md).
 */
export const loadHealthSweepConfig = (env: NodeJS.ProcessEnv = process.env): HealthSweepConfig =>
  readJsonSetting(env, 'HEALTH_SWEEP_CONFIG', parseHealthSweepConfig);
