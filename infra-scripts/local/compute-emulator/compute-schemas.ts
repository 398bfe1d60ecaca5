import { z } from 'zod';
import { invalid } from './errors';

/** Request bodies and queries of the Compute API subset. Everything from a client is checked here. */
const name = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a valid resource name');
const fixedOrPercent = z.object({
  fixed: z.number().int().min(0).optional(),
  percent: z.number().int().min(0).max(100).optional(),
  calculated: z.number().optional(),
});
const policyFields = {
  minNumReplicas: z.number().int().min(0).max(1000),
  maxNumReplicas: z.number().int().min(0).max(1000),
  coolDownPeriodSec: z.number().int().min(0).max(3600),
  mode: z.enum(['ON', 'OFF', 'ONLY_SCALE_OUT', 'ONLY_UP']),
  cpuUtilization: z.object({
    utilizationTarget: z.number(),
    predictiveMethod: z.enum(['NONE', 'OPTIMIZE_AVAILABILITY']).optional(),
  }),
  customMetricUtilizations: z.array(
    z.object({
      metric: z.string().min(1),
      filter: z.string().optional(),
      utilizationTarget: z.number().positive().optional(),
      utilizationTargetType: z.enum(['GAUGE', 'DELTA_PER_SECOND', 'DELTA_PER_MINUTE']).optional(),
      singleInstanceAssignment: z.number().positive().optional(),
    }),
  ),
  scaleInControl: z.object({
    maxScaledInReplicas: fixedOrPercent.optional(),
    timeWindowSec: z.number().int().min(0).max(3600).optional(),
  }),
};
const partialPolicy = z.object(policyFields).partial();
export const autoscalerBody = z.object({
  name: name.optional(),
  target: z.string().optional(),
  description: z.string().optional(),
  autoscalingPolicy: partialPolicy.optional(),
});
export const autoscalerInsert = z.object({
  name,
  target: z.string().min(1),
  description: z.string().optional(),
  autoscalingPolicy: partialPolicy.extend({ maxNumReplicas: policyFields.maxNumReplicas }),
});
export const igmInsert = z.object({
  name,
  baseInstanceName: name.optional(),
  instanceTemplate: z.string().min(1),
  targetSize: z.number().int().min(0).max(1000),
  description: z.string().optional(),
  distributionPolicy: z.object({ zones: z.array(z.object({ zone: z.string() })).optional() }).optional(),
});
export const igmPatch = z.object({
  fingerprint: z.string().optional(),
  description: z.string().optional(),
  instanceTemplate: z.string().optional(),
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
