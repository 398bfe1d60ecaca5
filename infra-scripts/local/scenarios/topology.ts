/**
 * The sandbox's topology: the project, its zones, the instance templates, MIGs and autoscalers the
 * deploy scripts would create, and where instances get their addresses.
 */
import type { RunningEmulator } from '../compute-emulator';
import type { Caller } from '../compute-emulator/emulator';

export const sandboxProject = 'sandbox-project';
export const sandboxZones = ['us-central1-a', 'us-central1-b'];
export const sandboxRegion = 'us-central1';
/** The deployment name the sandbox stands for: its VMs carry it as the deploy's `deployment` label. */
export const sandboxDeployment = 'ilb';
export const sandboxRoles = ['backend', 'haproxy', 'frontend'] as const;
export type SandboxRole = (typeof sandboxRoles)[number];
export const metrics = {
  backendRate: 'custom.googleapis.com/ilb/backend/request_rate',
  haproxyRate: 'custom.googleapis.com/ilb/haproxy/request_rate',
};

/** Per role a read-only `<role>-default` token (see acl.ts); agent tokens come from each instance's login. */
export type RoleTokens = Record<`${SandboxRole}-default`, string>;

interface Group {
  role: SandboxRole;
  /** Regional MIGs spread over sandboxZones; a zonal one lives in that zone. */
  zone?: string;
  size: number;
  autoscaler?: { min: number; max: number; metric: string; target: number };
}

/** MIG names and base instance names are the role: the role tokens' node rules are `<role>-` prefixes. */
export const groups: readonly Group[] = [
  { role: 'backend', size: 2, autoscaler: { min: 2, max: 4, metric: metrics.backendRate, target: 15 } },
  { role: 'haproxy', size: 2, autoscaler: { min: 2, max: 4, metric: metrics.haproxyRate, target: 60 } },
  { role: 'frontend', zone: sandboxZones[0]!, size: 1 },
];

/** Pure: Consul servers and the Pub/Sub emulator live on `<prefix>.1-3`; instances on the next /24. */
export function instancePrefix(prefix: string): string {
  const [a, b, c] = prefix.split('.').map(Number) as [number, number, number];
  return `${a}.${b}.${(c + 1) % 256}.`;
}

const caller: Caller = { userAgent: 'sandbox-setup' };

/** Templates, MIGs and autoscalers, as the deploy scripts create them in a project. */
export function seedTopology(compute: RunningEmulator, tokens: RoleTokens, instanceCidr: string): void {
  const emu = compute.emulator;
  for (const role of sandboxRoles) {
    emu.addTemplate(`${role}-tmpl`, {
      machineType: 'e2-small',
      labels: { role, deployment: sandboxDeployment },
      tags: { items: [role] },
      metadata: {
        items: [
          { key: 'ilb-role', value: role },
          { key: 'consul-default-token', value: tokens[`${role}-default`] },
          // As the deploy: HAProxy routes only to members inside the instances' subnet.
          ...(role === 'haproxy' ? [{ key: 'ilb-backend-cidrs', value: instanceCidr }] : []),
          ...(role === 'frontend' ? [{ key: 'ilb-haproxy-cidrs', value: instanceCidr }] : []),
        ],
      },
    });
  }
  for (const g of groups) {
    const scope = g.zone
      ? { kind: 'zones' as const, name: g.zone }
      : { kind: 'regions' as const, name: sandboxRegion };
    emu.insertIgm(
      scope,
      {
        name: g.role,
        baseInstanceName: g.role,
        instanceTemplate: `${g.role}-tmpl`,
        targetSize: g.size,
        listManagedInstancesResults: 'PAGINATED', // as the deploy creates them
      },
      caller,
    );
    if (!g.autoscaler) continue;
    emu.insertAutoscaler(
      scope,
      {
        name: `${g.role}-autoscaler`,
        target: `projects/${sandboxProject}/${scope.kind}/${scope.name}/instanceGroupManagers/${g.role}`,
        autoscalingPolicy: {
          minNumReplicas: g.autoscaler.min,
          maxNumReplicas: g.autoscaler.max,
          coolDownPeriodSec: 20,
          mode: 'ON',
          customMetricUtilizations: [
            {
              metric: g.autoscaler.metric,
              utilizationTarget: g.autoscaler.target,
              utilizationTargetType: 'GAUGE',
            },
          ],
        },
      },
      caller,
    );
  }
}

/**
 * healthSweep's thresholds in the sandbox, where a sweep runs every 15 s and instances boot in
 * seconds rather than minutes (production defaults: infra-scripts/config/README.md):
 * - absentSweeps 2: a node whose instance is in no group (and that Compute cannot confirm) goes
 *   after 2 consecutive sweeps, ~30 s;
 * - bootGraceSeconds 120: a running instance may take 2 minutes to join Consul before it counts as
 *   an orphan (a sandbox instance joins in 10–60 s under load);
 * - brokenGraceSeconds 60: an instance critical for a minute is recreated (a crashed one is back
 *   within ~20 s, so kill-backend does not trigger it);
 * - maxRecreations 1 and healthyMinimum 50%: groups of 2–4 lose at most one member at a time;
 * - a token bucket of 6 a minute, burst 3: a runaway plan stops after three actions.
 */
export const sandboxSweepThresholds = {
  absentSweeps: 2,
  bootGraceSeconds: 120,
  brokenGraceSeconds: 60,
  maxRecreations: 1,
  healthyMinimum: '50%',
  tokenBucket: { ratePerMinute: 6, burst: 3 },
  zoneDeadThreshold: 0.55,
} as const;

/** Pure: HEALTH_SWEEP_CONFIG_JSON for the sandbox's groups (regional backend/haproxy, zonal frontend). */
export function healthSweepConfig(): string {
  return JSON.stringify({
    groups: groups.map((g) => ({
      project: sandboxProject,
      ...(g.zone ? { zone: g.zone } : { region: sandboxRegion }),
      name: g.role,
      role: g.role,
    })),
    thresholds: sandboxSweepThresholds,
    repairOrphans: false,
  });
}
