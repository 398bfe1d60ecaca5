import { z } from 'zod';
import type { Incident } from './notification';

/**
 * The rule file of scalingAlerts: which incidents change which autoscalers, how, and within which
 * guardrails. Labels on an alert policy can only choose among the changes a rule allows, and every
 * number a rule asks for is clamped by its tier's guardrails when planned (plan.ts). Example with
 * every field: infra-scripts/config/scaling-rules.example.json.
 */

const resourceName = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Compute resource name');
const zoneName = z.string().regex(/^[a-z]+-[a-z]+[0-9]+-[a-z]$/, 'a zone such as us-central1-b');
const regionName = z.string().regex(/^[a-z]+-[a-z]+[0-9]+$/, 'a region such as us-central1');
const projectId = z.string().regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'a project id');
const labelKey = z.string().min(1).max(63);
/** A Monitoring metric type, e.g. `custom.googleapis.com/ilb/backend/request_rate`. */
export const metricTypeSchema = z
  .string()
  .max(256)
  .regex(/^[a-z][-a-z0-9.]*\.[a-z]+\/[-A-Za-z0-9_./]+$/, 'a metric type such as custom.googleapis.com/x/y');
const labelValue = z.string().max(63);

/** A zonal or regional autoscaler. */
export const autoscalerRefSchema = z
  .object({
    project: projectId.optional(),
    zone: zoneName.optional(),
    region: regionName.optional(),
    name: resourceName,
  })
  .strict()
  .refine((a) => (a.zone === undefined) !== (a.region === undefined), 'exactly one of zone or region');
export type AutoscalerRef = z.infer<typeof autoscalerRefSchema>;

/** `zones/Z/autoscalers/N` or `regions/R/autoscalers/N`, prefixed by `projects/P/` when known. */
export function autoscalerKey(ref: AutoscalerRef): string {
  const where = ref.zone !== undefined ? `zones/${ref.zone}` : `regions/${ref.region}`;
  return `${ref.project !== undefined ? `projects/${ref.project}/` : ''}${where}/autoscalers/${ref.name}`;
}

const utilization = z.number().gt(0).max(1);
const targetRange = z
  .object({ min: utilization, max: utilization })
  .strict()
  .refine((r) => r.min <= r.max, 'min must not exceed max');

/** One change of an autoscaler's policy. */
export const changeSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('raise-min'),
      /** Floor = the autoscaler's own minNumReplicas + by … */
      by: z.number().int().min(1).max(1000).optional(),
      /** … or exactly this floor. */
      to: z.number().int().min(1).max(1000).optional(),
    })
    .strict()
    .refine((c) => (c.by === undefined) !== (c.to === undefined), 'raise-min takes exactly one of by or to'),
  z.object({ type: z.literal('cpu-target'), target: utilization }).strict(),
  z.object({ type: z.literal('lb-target'), target: utilization }).strict(),
  z
    .object({
      type: z.literal('custom-metric-target'),
      metric: metricTypeSchema,
      target: z.number().positive(),
    })
    .strict(),
  z
    .object({
      type: z.literal('scale-in-control'),
      maxScaledInReplicas: z.number().int().min(0).max(1000),
      timeWindowSec: z.number().int().min(60).max(3600),
    })
    .strict(),
  z.object({ type: z.literal('mode'), mode: z.literal('ONLY_SCALE_OUT') }).strict(),
]);
export type Change = z.infer<typeof changeSchema>;
export type ChangeType = Change['type'];

const description = z.string().max(1024).optional();

export const tierSchema = z
  .object({
    description,
    autoscalers: z.array(autoscalerRefSchema).min(1).max(64),
    /** No floor that a lease sets is below this… */
    floor: z.number().int().min(0).max(1000),
    /** …or above this (nor above the autoscaler's maxNumReplicas). */
    ceiling: z.number().int().min(1).max(1000),
    /** A lease raises the floor at most this far above the autoscaler's own minNumReplicas. */
    maxStep: z.number().int().min(1).max(1000),
    /** No escalation sooner than this after the previous change of the same autoscaler. */
    cooldownSec: z.number().int().min(0).max(86_400),
    /** Changes (escalations and reverts) of one autoscaler within a rolling hour. */
    maxChangesPerHour: z.number().int().min(1).max(1000),
    lease: z
      .object({
        /** GCE's shortest scaling schedule is 300 s. */
        defaultSec: z.number().int().min(300).max(86_400),
        maxSec: z.number().int().min(300).max(86_400),
        /**
         * Longest that one policy's incidents hold leases in a row, from the first one's grant:
         * new incident ids and renewals never extend past it (default 4 × maxSec).
         */
        maxLifetimeSec: z
          .number()
          .int()
          .min(300)
          .max(7 * 86_400)
          .optional(),
      })
      .strict()
      .refine((l) => l.defaultSec <= l.maxSec, 'defaultSec must not exceed maxSec')
      .refine((l) => (l.maxLifetimeSec ?? l.maxSec) >= l.maxSec, 'maxLifetimeSec must not be below maxSec'),
    /** Bounds of utilization targets; a tier without them refuses target changes. */
    targets: z
      .object({
        cpu: targetRange.optional(),
        loadBalancing: targetRange.optional(),
        customMetrics: z
          .record(
            metricTypeSchema,
            z
              .object({ min: z.number().positive(), max: z.number().positive() })
              .strict()
              .refine((r) => r.min <= r.max, 'min must not exceed max'),
          )
          .optional(),
        /** Largest change of a target from its original value, as a fraction of that value. */
        maxRelativeStep: z.number().gt(0).max(1),
      })
      .strict()
      .optional(),
    scaleIn: z
      .object({
        /** Tightest maxScaledInReplicas.fixed a lease may set. */
        minFixed: z.number().int().min(0).max(1000),
        /** Longest timeWindowSec a lease may set (GCE allows up to 3600). */
        maxTimeWindowSec: z.number().int().min(60).max(3600),
      })
      .strict()
      .optional(),
    /** Whether leases may switch the autoscaler to ONLY_SCALE_OUT. */
    allowModeChange: z.boolean().default(false),
  })
  .strict()
  .refine((t) => t.floor <= t.ceiling, 'floor must not exceed ceiling');
export type Tier = z.infer<typeof tierSchema>;

/** The tier's maximum lifetime of a policy's run of leases, in ms. */
export const maxLifetimeMs = (tier: Tier): number =>
  (tier.lease.maxLifetimeSec ?? 4 * tier.lease.maxSec) * 1000;

/** Where a rule's tier or change comes from: fixed, or chosen by one of the policy's user labels. */
const fromLabel = z.object({ fromLabel: labelKey }).strict();

export const ruleSchema = z
  .object({
    name: z.string().regex(/^[a-z][-a-z0-9]{0,62}$/),
    description,
    /** Every field given must match; an empty match matches every incident. */
    match: z
      .object({
        policyName: z.string().min(1).max(512).optional(),
        /** Labels that must have exactly these values. */
        labels: z.record(labelKey, labelValue).optional(),
        /** Labels that must be present with any value. */
        labelsPresent: z.array(labelKey).max(16).optional(),
        metricType: z.string().min(1).max(256).optional(),
        resourceType: z.string().min(1).max(128).optional(),
        resourceLabels: z.record(labelKey, z.string().max(256)).optional(),
      })
      .strict(),
    tier: z.union([z.string().min(1).max(63), fromLabel]),
    change: z.union([
      changeSchema,
      z
        .object({
          fromLabel: labelKey,
          /** Label value → change: nothing outside this map can be asked for. */
          allowed: z.record(labelValue, changeSchema),
        })
        .strict(),
    ]),
    /** `incident-zone`: only autoscalers in (or, regional, covering) the incident resource's zone. */
    scope: z.enum(['incident-zone', 'all']).default('incident-zone'),
    leaseSec: z.number().int().min(300).max(86_400).optional(),
  })
  .strict();
export type Rule = z.infer<typeof ruleSchema>;

export const ruleFileSchema = z
  .object({
    version: z.literal(1),
    description,
    /** Autoscalers this deployment may touch: by name prefix, or by owner label (either suffices). */
    ownership: z
      .object({
        namePrefixes: z.array(z.string().regex(/^[a-z][-a-z0-9]{0,62}$/)).default([]),
        label: z.object({ key: labelKey, value: labelValue }).strict().optional(),
      })
      .strict()
      .refine((o) => o.namePrefixes.length > 0 || o.label !== undefined, 'name a prefix or an owner label'),
    /** Scaling schedules whose name starts with this are this function's own. */
    schedulePrefix: z
      .string()
      .regex(/^[a-z][-a-z0-9]{0,23}-$/)
      .default('ilb-incident-'),
    tiers: z.record(z.string().regex(/^[a-z][-a-z0-9]{0,62}$/), tierSchema),
    rules: z.array(ruleSchema).max(256).default([]),
    /** Append `defaultRules` after the file's own rules. */
    useDefaultRules: z.boolean().default(true),
  })
  .strict()
  .superRefine((file, ctx) => {
    file.rules.forEach((rule, i) => {
      if (typeof rule.tier === 'string' && !(rule.tier in file.tiers)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'tier'], message: `no tier ${rule.tier}` });
      }
    });
  });
export type RuleFile = z.infer<typeof ruleFileSchema>;

/**
 * The default rule: an alert policy labelled `tier=<tier>` and `action=<action>` (as in
 * test/fixtures/events/monitoring-incident-open.json: `tier=haproxy, action=raise-min`) asks for
 * one of these changes of the autoscalers of that tier in the incident's zone.
 */
export const defaultRules: Rule[] = [
  {
    name: 'labels-tier-action',
    match: { labelsPresent: ['tier', 'action'] },
    tier: { fromLabel: 'tier' },
    change: {
      fromLabel: 'action',
      allowed: {
        'raise-min': { type: 'raise-min', by: 2 },
        'lower-cpu-target': { type: 'cpu-target', target: 0.5 },
        'lower-lb-target': { type: 'lb-target', target: 0.6 },
        'hold-scale-in': { type: 'scale-in-control', maxScaledInReplicas: 0, timeWindowSec: 1800 },
        'scale-out-only': { type: 'mode', mode: 'ONLY_SCALE_OUT' },
      },
    },
    scope: 'incident-zone',
  },
];

export type RuleFileResult = { ok: true; rules: RuleFile } | { ok: false; reason: string };

/** Validates a rule file's parsed JSON; never throws. */
export function parseRuleFile(input: unknown): RuleFileResult {
  const parsed = ruleFileSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    return { ok: false, reason: `invalid rule file: ${issues}` };
  }
  return { ok: true, rules: parsed.data };
}

/** What an incident asks of one tier, before clamping against an autoscaler's policy. */
export interface Target {
  rule: string;
  tierName: string;
  tier: Tier;
  change: Change;
  /** Lease length, bounded by the tier. */
  leaseSec: number;
  autoscalers: AutoscalerRef[];
}

export type MatchResult = { ok: true; target: Target } | { ok: false; reason: string };

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const sameEntries = (want: Record<string, string> | undefined, got: Record<string, string>) =>
  Object.entries(want ?? {}).every(([k, v]) => has(got, k) && got[k] === v);

export function ruleMatches(rule: Rule, incident: Incident): boolean {
  const m = rule.match;
  if (m.policyName !== undefined && m.policyName !== incident.policyName) return false;
  if (m.metricType !== undefined && m.metricType !== incident.metricType) return false;
  if (m.resourceType !== undefined && m.resourceType !== incident.resourceType) return false;
  if (!sameEntries(m.labels, incident.userLabels)) return false;
  if (!sameEntries(m.resourceLabels, incident.resourceLabels)) return false;
  return (m.labelsPresent ?? []).every((k) => has(incident.userLabels, k));
}

const regionOf = (zone: string) => zone.replace(/-[a-z]$/, '');

/** Autoscalers of the tier that the incident concerns. */
function scopeAutoscalers(rule: Rule, tier: Tier, incident: Incident): AutoscalerRef[] {
  const zone = incident.resourceLabels.zone;
  // Without a zone (a per-group or regional metric) every autoscaler of the tier is concerned.
  if (rule.scope === 'all' || zone === undefined) return tier.autoscalers;
  return tier.autoscalers.filter(
    (a) => a.zone === zone || (a.region !== undefined && a.region === regionOf(zone)),
  );
}

/**
 * The first rule that matches the incident, resolved to a tier, a change and autoscalers. A rule
 * that matches but whose labels ask for something it does not allow refuses (it does not fall
 * through to later rules: a mislabelled policy must be visible).
 */
export function matchIncident(incident: Incident, file: RuleFile): MatchResult {
  const rules = file.useDefaultRules ? [...file.rules, ...defaultRules] : file.rules;
  const rule = rules.find((r) => ruleMatches(r, incident));
  if (!rule) return { ok: false, reason: 'no rule matches the incident' };
  const refuse = (reason: string): MatchResult => ({ ok: false, reason: `rule ${rule.name}: ${reason}` });

  const tierName = typeof rule.tier === 'string' ? rule.tier : incident.userLabels[rule.tier.fromLabel];
  if (tierName === undefined) return refuse('the incident has no tier label');
  const tier = has(file.tiers, tierName) ? file.tiers[tierName] : undefined;
  if (!tier) return refuse(`tier ${JSON.stringify(tierName)} is not configured`);

  let change: Change | undefined;
  if ('type' in rule.change) {
    change = rule.change;
  } else {
    const action = incident.userLabels[rule.change.fromLabel];
    if (action === undefined) return refuse(`the incident has no ${rule.change.fromLabel} label`);
    change = has(rule.change.allowed, action) ? rule.change.allowed[action] : undefined;
    if (!change) return refuse(`action ${JSON.stringify(action)} is not allowed`);
  }

  const autoscalers = scopeAutoscalers(rule, tier, incident);
  if (autoscalers.length === 0) return refuse(`tier ${tierName} has no autoscaler in the incident's zone`);
  const leaseSec = Math.min(Math.max(rule.leaseSec ?? tier.lease.defaultSec, 300), tier.lease.maxSec);
  return { ok: true, target: { rule: rule.name, tierName, tier, change, leaseSec, autoscalers } };
}
