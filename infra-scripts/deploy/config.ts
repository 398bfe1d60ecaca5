import { z } from 'zod';
import { topicFunctions, type TopicFunctionName } from '../../functions/catalog';
import { parseHealthSweepConfig } from '../../shared/health-sweep/config';
import { parseRuleFile } from '../../shared/scaling-alerts/rules';
import { scheduleIntervalSec } from './heartbeat';

/**
 * The deployment's configuration: a JSON file (see `infra-scripts/deploy/config.example.json`)
 * overridden by command-line flags. Everything has a default except the project.
 */

const name = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,6}[a-z0-9]$/, '2–8 characters: lowercase letters, digits, -');
const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/, 'an IPv4 CIDR range');
const machineType = z.string().regex(/^[a-z0-9-]+$/);
const imageFamily = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/);

const scaledTier = (min: number, max: number) =>
  z
    .object({
      machineType: machineType.default('e2-small'),
      imageFamily: imageFamily.optional(),
      min: z.number().int().min(1).max(100).default(min),
      max: z.number().int().min(1).max(100).default(max),
      targetCpu: z.number().gt(0).lte(1).default(0.6),
    })
    .strict()
    .refine((t) => t.min <= t.max, 'min must not exceed max');

/** The functions a config may list: the catalog's topic functions, in its order. */
const knownFunctions = Object.keys(topicFunctions) as TopicFunctionName[];

/** An IAM member that may call healthSweepHttp: a Google group, user or service account. */
const invoker = z
  .string()
  .regex(
    /^(group|user|serviceAccount):[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$/i,
    'group:, user: or serviceAccount:EMAIL',
  );

export const configSchema = z
  .object({
    deployment: name.default('ilb'),
    project: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a Google Cloud project ID'),
    region: z
      .string()
      .regex(/^[a-z]+-[a-z]+\d+$/)
      .default('us-central1'),
    /** Zones of the region: Consul servers spread over them, the MIGs are regional across them. */
    zones: z
      .array(z.string().regex(/^[a-z]+-[a-z]+\d+-[a-z]$/))
      .min(1)
      .max(4)
      .optional(),
    /** Project holding the Packer images (default: the deployment's project). */
    imageProject: z.string().min(1).optional(),
    network: z
      .object({
        /** The VMs' subnet; Consul servers take fixed addresses from .10 on. */
        cidr: cidr.default('10.10.0.0/20'),
        /** The functions' Direct VPC egress subnet: the only source admitted to Consul's HTTPS API. */
        functionsCidr: cidr.default('10.10.16.0/26'),
      })
      .strict()
      .default({ cidr: '10.10.0.0/20', functionsCidr: '10.10.16.0/26' }),
    consul: z
      .object({
        servers: z.union([z.literal(3), z.literal(5)]).default(3),
        machineType: machineType.default('e2-small'),
        imageFamily: imageFamily.optional(),
        datacenter: z
          .string()
          .regex(/^[a-z0-9-]+$/)
          .default('dc1'),
      })
      .strict()
      .default({ servers: 3, machineType: 'e2-small', datacenter: 'dc1' }),
    backend: scaledTier(2, 6).default({ machineType: 'e2-small', min: 2, max: 6, targetCpu: 0.6 }),
    haproxy: scaledTier(2, 4).default({ machineType: 'e2-small', min: 2, max: 4, targetCpu: 0.6 }),
    frontend: z
      .object({ machineType: machineType.default('e2-small'), imageFamily: imageFamily.optional() })
      .strict()
      .default({ machineType: 'e2-small' }),
    /** Functions to deploy; default: every topic function of functions/catalog.ts. */
    functions: z.array(z.enum(knownFunctions)).optional(),
    /** Cron (UTC) of healthSweep's ticks; the heartbeat alert needs its interval (heartbeat.ts). */
    healthSweepSchedule: z
      .string()
      .min(9)
      .refine(
        (s) => scheduleIntervalSec(s) !== undefined,
        'every day of every month: "*/N * * * *", "M1,M2 * * * *", "M */H * * *" or "M H * * *"',
      )
      .default('*/5 * * * *'),
    /**
     * healthSweep's own settings: the groups it watches are the deployment's MIGs; `thresholds` and
     * `repairOrphans` as in infra-scripts/config/README.md. `invokers`: who may call the operators'
     * HTTP function healthSweepHttp, which only reports (IAM `roles/run.invoker`; default nobody);
     * `actInvokers`: who may call healthSweepActHttp, which acts on `{"act": true}` (default nobody;
     * granted apart, so reading reports never implies repairing); `httpIngress`: where
     * from (default `internal-only`: from the VPC; `all` lets an operator call it from anywhere, still
     * only with an identity token of an invoker).
     */
    healthSweep: z
      .object({
        thresholds: z.record(z.string(), z.unknown()).optional(),
        repairOrphans: z.boolean().optional(),
        invokers: z.array(invoker).default([]),
        actInvokers: z.array(invoker).default([]),
        httpIngress: z.enum(['internal-only', 'internal-and-gclb', 'all']).default('internal-only'),
      })
      .strict()
      .default({ invokers: [], actInvokers: [], httpIngress: 'internal-only' }),
    /**
     * The operator's alerts (the heartbeat alert on healthSweep): `notificationChannels` are existing
     * Monitoring channels (`projects/P/notificationChannels/ID`) they notify; `sweepMissedIntervals`:
     * how many scheduler intervals without a completed sweep open the alert.
     */
    alerting: z
      .object({
        notificationChannels: z
          .array(
            z
              .string()
              .regex(/^projects\/[^/]+\/notificationChannels\/[^/]+$/, 'projects/P/notificationChannels/ID'),
          )
          .default([]),
        sweepMissedIntervals: z.number().int().min(1).max(48).default(3),
      })
      .strict()
      .default({ notificationChannels: [], sweepMissedIntervals: 3 }),
    /**
     * scalingAlerts' rule file (shared/scaling-alerts/rules.ts): the document itself, or the path of a
     * JSON file holding it (relative to the config file). Default: generated from the deployment
     * (scalingRulesDocument). Either way it reaches scalingAlerts and healthSweep as SCALING_RULES_JSON.
     */
    scalingRules: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  })
  .strict();

export type DeployConfig = z.infer<typeof configSchema>;

/** The configuration with every derived default filled in. */
export interface ResolvedConfig extends Omit<
  DeployConfig,
  'zones' | 'functions' | 'imageProject' | 'scalingRules'
> {
  zones: string[];
  functions: TopicFunctionName[];
  imageProject: string;
  /** The rule document passed to the functions; present when scalingAlerts is deployed. */
  scalingRules?: Record<string, unknown>;
}

export class DeployConfigError extends Error {
  override name = 'DeployConfigError';
}

/** Flags that override the file: `--project`, `--region`, `--zones a,b`, `--deployment`, `--set a.b=v`. */
export function applyOverrides(file: unknown, overrides: Record<string, string>, sets: string[]): unknown {
  const out = structuredClone((file ?? {}) as Record<string, unknown>);
  for (const [key, value] of Object.entries(overrides)) {
    out[key] = key === 'zones' || key === 'functions' ? value.split(',').filter(Boolean) : value;
  }
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new DeployConfigError(`--set ${set}: expected key.path=value`);
    const path = set.slice(0, eq).split('.');
    const raw = set.slice(eq + 1);
    let node = out;
    for (const part of path.slice(0, -1)) {
      if (['__proto__', 'constructor', 'prototype'].includes(part)) {
        throw new DeployConfigError(`--set ${set}: invalid key`);
      }
      const next = node[part];
      node[part] = typeof next === 'object' && next !== null ? next : {};
      node = node[part] as Record<string, unknown>;
    }
    const last = path[path.length - 1] as string;
    // Numbers stay numbers (sizes, CPU targets); everything else is a string.
    node[last] = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  return out;
}

/**
 * Validates the merged input; `readText` reads a `scalingRules` path (the CLI's file access;
 * without it a path is refused).
 */
export function resolveConfig(input: unknown, readText?: (path: string) => string): ResolvedConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new DeployConfigError(`invalid deploy config:\n  ${issues.join('\n  ')}`);
  }
  const c = parsed.data;
  const zones = c.zones ?? ['a', 'b', 'c'].map((z) => `${c.region}-${z}`);
  for (const zone of zones) {
    if (!zone.startsWith(`${c.region}-`)) throw new DeployConfigError(`zone ${zone} is not in ${c.region}`);
  }
  const functions = c.functions ?? knownFunctions;
  const { scalingRules: rulesInput, ...rest } = c;
  const resolved = { ...rest, zones, functions, imageProject: c.imageProject ?? c.project };
  const scalingRules = functions.includes('scalingAlerts')
    ? resolveScalingRules(rulesInput, resolved, readText)
    : undefined;
  if (functions.includes('healthSweep')) {
    try {
      parseHealthSweepConfig(healthSweepDocument(resolved));
    } catch (err) {
      throw new DeployConfigError(`invalid deploy config:\n  healthSweep: ${(err as Error).message}`);
    }
  }
  return { ...resolved, ...(scalingRules ? { scalingRules } : {}) };
}

type PlanConfig = Omit<ResolvedConfig, 'scalingRules'>;

/** The tiers whose autoscalers the deploy creates, and so names in the generated rules. */
const scaledRoles = ['backend', 'haproxy'] as const;

/**
 * `gcloud … set-autoscaling` names a new autoscaler `<group>-<4 random characters>`: its name is
 * only known after the deploy made it. A rule document may therefore say `@{autoscaler-<role>}`
 * where a name goes; the plan resolves it with the lookup `autoscalerLookup` names.
 */
export const autoscalerPlaceholder = (role: (typeof scaledRoles)[number]) => `@{autoscaler-${role}}`;

/**
 * The rule document generated for a deployment without `scalingRules`: the regional autoscalers of
 * its backend and haproxy groups, floors and ceilings from the groups' sizes, ownership by their name
 * prefix, a rule for each of the deploy's CPU alert policies (steps/monitoring.ts: `<deployment> <role> CPU
 * high`), and the default rules (alert policies labelled `tier` and `action`).
 */
export function scalingRulesDocument(c: PlanConfig): Record<string, unknown> {
  const tier = (role: (typeof scaledRoles)[number]) => ({
    description: `The autoscaler of ${c.deployment}-${role}: floors within the group size.`,
    autoscalers: [{ project: c.project, region: c.region, name: autoscalerPlaceholder(role) }],
    floor: c[role].min,
    ceiling: c[role].max,
    maxStep: Math.max(1, Math.min(3, c[role].max - c[role].min)),
    cooldownSec: 300,
    maxChangesPerHour: 6,
    lease: { defaultSec: 1800, maxSec: 3600 },
    targets: { cpu: { min: 0.3, max: Math.max(0.3, c[role].targetCpu) }, maxRelativeStep: 0.3 },
    scaleIn: { minFixed: 0, maxTimeWindowSec: 1800 },
  });
  return {
    version: 1,
    description: `Generated by the deploy for deployment ${c.deployment}.`,
    ownership: { namePrefixes: scaledRoles.map((r) => `${c.deployment}-${r}-`) },
    schedulePrefix: `${c.deployment}-incident-`,
    tiers: { backend: tier('backend'), haproxy: tier('haproxy') },
    // The deploy's own CPU policies (steps/monitoring.ts) carry no tier/action labels: a rule each.
    rules: scaledRoles.map((role) => ({
      name: `${role}-cpu-high`,
      match: { policyName: `${c.deployment} ${role} CPU high` },
      tier: role,
      change: { type: 'raise-min', by: 2 },
      scope: 'all',
    })),
    useDefaultRules: true,
  };
}

/** The rule document, read if a path, validated with parseRuleFile (placeholders as group names). */
function resolveScalingRules(
  input: string | Record<string, unknown> | undefined,
  c: PlanConfig,
  readText: ((path: string) => string) | undefined,
): Record<string, unknown> {
  const fail = (why: string) => new DeployConfigError(`invalid deploy config:\n  scalingRules: ${why}`);
  let doc: unknown = input ?? scalingRulesDocument(c);
  if (typeof input === 'string') {
    if (!readText) throw fail(`cannot read ${input} here`);
    try {
      doc = JSON.parse(readText(input));
    } catch (err) {
      throw fail(`${input}: ${(err as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw fail(`${input}: not a JSON object`);
  }
  const text = JSON.stringify(doc);
  // The env var goes through gcloud's alternate delimiter syntax (envVarsFlag), which uses `|`.
  if (text.includes('|')) throw fail('may not contain "|"');
  const known = new Map(scaledRoles.map((r) => [autoscalerPlaceholder(r), `${c.deployment}-${r}`]));
  // Any other `@{…}` would be taken for a lookup the plan does not have.
  const unknown = [...text.matchAll(/@\{[^}]*\}/g)].map((m) => m[0]).filter((p) => !known.has(p));
  if (unknown.length > 0)
    throw fail(`unknown placeholder ${unknown[0]} (only ${[...known.keys()].join(', ')})`);
  const stood = text.replace(/@\{autoscaler-(backend|haproxy)\}/g, (p) => known.get(p) as string);
  const parsed = parseRuleFile(JSON.parse(stood));
  if (!parsed.ok) throw fail(parsed.reason);
  return doc as Record<string, unknown>;
}

/**
 * healthSweep's configuration (HEALTH_SWEEP_CONFIG_JSON) for this deployment: it watches the MIGs the
 * deploy creates (`<deployment>-<role>`: backend and haproxy regional, frontend zonal in the first
 * zone) with the thresholds of the deploy config.
 */
export function healthSweepDocument(c: PlanConfig): Record<string, unknown> {
  const regional = (role: string) => ({
    project: c.project,
    region: c.region,
    name: `${c.deployment}-${role}`,
    role,
  });
  return {
    groups: [
      regional('backend'),
      regional('haproxy'),
      { project: c.project, zone: c.zones[0], name: `${c.deployment}-frontend`, role: 'frontend' },
    ],
    ...(c.healthSweep.thresholds ? { thresholds: c.healthSweep.thresholds } : {}),
    ...(c.healthSweep.repairOrphans !== undefined ? { repairOrphans: c.healthSweep.repairOrphans } : {}),
  };
}
