import { z } from 'zod';
import { invalid } from './errors';
import { listManagedInstancesResults } from './state';

/** Request bodies and queries of the Compute API subset. Everything from a client is checked here. */
export const resourceName = z
  .string()
  .regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a valid resource name');
const name = resourceName;
const fixedOrPercent = z
  .object({
    fixed: z.number().int().min(0).optional(),
    percent: z.number().int().min(0).max(100).optional(),
    calculated: z.number().optional(),
  })
  .strict();
// AutoscalingPolicyScalingSchedule: durationSec at least 300; up to 128 schedules (Compute v1 reference).
const scalingSchedule = z
  .object({
    minRequiredReplicas: z.number().int().min(0).max(1000),
    schedule: z.string().min(1).max(256),
    timeZone: z.string().max(64).optional(),
    durationSec: z.number().int().min(300),
    disabled: z.boolean().optional(),
    description: z.string().max(2048).optional(),
  })
  .strict();
const policyFields = {
  minNumReplicas: z.number().int().min(0).max(1000),
  maxNumReplicas: z.number().int().min(0).max(1000),
  coolDownPeriodSec: z.number().int().min(0).max(3600),
  mode: z.enum(['ON', 'OFF', 'ONLY_SCALE_OUT', 'ONLY_UP']),
  cpuUtilization: z
    .object({
      utilizationTarget: z.number().optional(),
      predictiveMethod: z.enum(['NONE', 'OPTIMIZE_AVAILABILITY']).optional(),
    })
    .strict(),
  customMetricUtilizations: z.array(
    z
      .object({
        metric: z.string().min(1),
        filter: z.string().optional(),
        utilizationTarget: z.number().positive().optional(),
        utilizationTargetType: z.enum(['GAUGE', 'DELTA_PER_SECOND', 'DELTA_PER_MINUTE']).optional(),
        singleInstanceAssignment: z.number().positive().optional(),
      })
      .strict(),
  ),
  loadBalancingUtilization: z.object({ utilizationTarget: z.number().positive().optional() }).strict(),
  scaleInControl: z
    .object({
      maxScaledInReplicas: fixedOrPercent.optional(),
      timeWindowSec: z.number().int().min(0).max(3600).optional(),
    })
    .strict(),
  scalingSchedules: z
    .record(name, scalingSchedule)
    .refine((m) => Object.keys(m).length <= 128, 'at most 128 scaling schedules'),
  stabilizationPeriodSec: z.number().int().min(0).max(86_400),
};
export const partialPolicy = z.object(policyFields).partial().strict();
export type PolicyInput = z.infer<typeof partialPolicy>;
// What GET returns besides the writable fields: a client that sends a resource back unchanged (get,
// modify, update) is not refused for them; they are ignored. Anything else is an unknown field: 400.
const outputOnly = {
  kind: z.string().optional(),
  id: z.string().optional(),
  creationTimestamp: z.string().optional(),
  selfLink: z.string().optional(),
  zone: z.string().optional(),
  region: z.string().optional(),
  status: z.string().optional(),
  statusDetails: z.array(z.unknown()).optional(),
  recommendedSize: z.number().optional(),
  scalingScheduleStatus: z.record(z.string(), z.unknown()).optional(),
};
export const autoscalerBody = z
  .object({
    name: name.optional(),
    target: z.string().optional(),
    description: z.string().optional(),
    autoscalingPolicy: partialPolicy.optional(),
    ...outputOnly,
  })
  .strict();
export const autoscalerInsert = z
  .object({
    name,
    target: z.string().min(1),
    description: z.string().optional(),
    autoscalingPolicy: partialPolicy.extend({ maxNumReplicas: policyFields.maxNumReplicas }),
    ...outputOnly,
  })
  .strict();
/** The body of a PATCH: a JSON merge patch, checked once merged (autoscalers.ts). */
export const mergePatchBody = z.record(z.string(), z.unknown());
/** Compute's requestId: a UUID, not the zero UUID (Compute v1 reference, e.g. autoscalers.patch). */
export const requestId = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID')
  .refine((id) => !/^[0-]+$/.test(id), 'must not be the zero UUID');
export const igmInsert = z.object({
  name,
  baseInstanceName: name.optional(),
  instanceTemplate: z.string().min(1),
  targetSize: z.number().int().min(0).max(1000),
  description: z.string().optional(),
  distributionPolicy: z.object({ zones: z.array(z.object({ zone: z.string() })).optional() }).optional(),
  listManagedInstancesResults: z.enum(listManagedInstancesResults).optional(),
});
export const igmPatch = z.object({
  fingerprint: z.string().optional(),
  description: z.string().optional(),
  instanceTemplate: z.string().optional(),
  listManagedInstancesResults: z.enum(listManagedInstancesResults).optional(),
});
const instances = z.array(z.string().min(1).max(1024)).max(1000).default([]);
export const instancesBody = z.object({ instances }).strict();
/** Only deleteInstances has `skipInstancesOnValidationError` (Compute v1 reference). */
export const deleteInstancesBody = z
  .object({ instances, skipInstancesOnValidationError: z.boolean().optional() })
  .strict();
export const listQuery = z.object({
  maxResults: z.coerce.number().int().min(0).max(500).optional(),
  pageToken: z.string().optional(),
  filter: z.string().optional(),
  orderBy: z.string().optional(),
  returnPartialSuccess: z.enum(['true', 'false']).optional(),
});
/** Parses API input; the first problem becomes Google's 400 `invalid` naming the field. */
export function parse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw invalid(`Invalid value for field '${[what, ...issue.path.map(String)].join('.')}': ${issue.message}`);
}

export const resizeQuery = z.object({ size: z.coerce.number().int() });
