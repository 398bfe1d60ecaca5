import { z } from 'zod';

/**
 * Compute v1 Autoscaler, the parts the orchestrator reads and patches (external input: validated).
 * Field semantics from the Compute v1 reference (Autoscaler, AutoscalingPolicy,
 * AutoscalingPolicyScalingSchedule; https://cloud.google.com/compute/docs/reference/rest/v1/autoscalers):
 * `schedule` is extended cron with an optional year (a single start when the year is set),
 * interpreted in `timeZone` (IANA); `durationSec` ≥ 300; overlapping schedules apply the greatest
 * `minRequiredReplicas`; at most 128 schedules; `patch` follows JSON merge patch rules, so `null`
 * removes a schedule or a field.
 */

const fixedOrPercentSchema = z.looseObject({
  fixed: z.number().int().nullish(),
  percent: z.number().int().nullish(),
});
export const scaleInControlSchema = z.looseObject({
  maxScaledInReplicas: fixedOrPercentSchema.nullish(),
  timeWindowSec: z.number().int().nullish(),
});
export const scalingScheduleSchema = z.looseObject({
  minRequiredReplicas: z.number().int().min(0).nullish(),
  schedule: z.string().nullish(),
  timeZone: z.string().nullish(),
  durationSec: z.number().int().nullish(),
  disabled: z.boolean().nullish(),
  description: z.string().nullish(),
});
const customMetricSchema = z.looseObject({
  metric: z.string().nullish(),
  filter: z.string().nullish(),
  utilizationTarget: z.number().nullish(),
  utilizationTargetType: z.string().nullish(),
  singleInstanceAssignment: z.number().nullish(),
});
export const autoscalingPolicySchema = z.looseObject({
  minNumReplicas: z.number().int().min(0).nullish(),
  maxNumReplicas: z.number().int().min(0).nullish(),
  cpuUtilization: z.looseObject({ utilizationTarget: z.number().nullish() }).nullish(),
  loadBalancingUtilization: z.looseObject({ utilizationTarget: z.number().nullish() }).nullish(),
  customMetricUtilizations: z.array(customMetricSchema).nullish(),
  scaleInControl: scaleInControlSchema.nullish(),
  mode: z.string().nullish(),
  scalingSchedules: z.record(z.string(), scalingScheduleSchema).nullish(),
});
/** ScalingScheduleStatus (output only): ACTIVE, READY, DISABLED or OBSOLETE, with start times (RFC 3339). */
export const scalingScheduleStatusSchema = z.looseObject({
  state: z.string().nullish(),
  lastStartTime: z.string().nullish(),
  nextStartTime: z.string().nullish(),
});
export const autoscalerSchema = z.looseObject({
  name: z.string().min(1),
  autoscalingPolicy: autoscalingPolicySchema.default({}),
  /** Per scaling schedule name, as GCE last evaluated it. */
  scalingScheduleStatus: z.record(z.string(), scalingScheduleStatusSchema).nullish(),
});
export type AutoscalingPolicy = z.infer<typeof autoscalingPolicySchema>;
export type Autoscaler = z.infer<typeof autoscalerSchema>;
export type ScalingSchedule = z.infer<typeof scalingScheduleSchema>;
export type ScaleInControl = z.infer<typeof scaleInControlSchema>;

/** A JSON merge patch of an autoscaling policy: `null` removes a field or a schedule. */
export type PolicyPatch = {
  minNumReplicas?: number;
  mode?: string;
  cpuUtilization?: { utilizationTarget: number };
  loadBalancingUtilization?: { utilizationTarget: number };
  customMetricUtilizations?: z.infer<typeof customMetricSchema>[];
  scaleInControl?: Record<string, unknown> | null;
  scalingSchedules?: Record<string, ScalingSchedule | null>;
};

/** The body of `autoscalers.patch`. */
export interface AutoscalerPatch {
  name: string;
  autoscalingPolicy: PolicyPatch;
}
