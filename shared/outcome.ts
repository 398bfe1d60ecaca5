/**
 * The one vocabulary of outcomes in every function's logs and results (docs/architecture.md,
 * "Outcomes"). Each log line about a delivery, a target or an action carries `decision` with one of
 * these words; what a feature did or would do (drain, deregister, raise-min, recreate…) goes in
 * `action`, and why in `reason`.
 */
export const decisions = [
  /** Changes were made. */
  'applied',
  /** A dry run: changes were decided and none made. */
  'planned',
  /** Nothing needed changing. */
  'noop',
  /** Not acted on because something newer or someone else wins (a re-registration, a lock, a CAS). */
  'skipped',
  /** A guardrail or a check refused what the input asked for. */
  'refused',
  /** The input is not for this function (another event type, project or policy; no rule matches). */
  'ignored',
  /** The input failed validation: acknowledged, never retried. */
  'rejected',
  /** Already handled: an at-least-once redelivery. */
  'duplicate',
  /** A permanent failure: acknowledged with an ERROR line, never retried. */
  'failed',
  /** A transient failure: thrown, so Pub/Sub redelivers. */
  'retry',
] as const;

export type Decision = (typeof decisions)[number];
