import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../config';
import { parseRuleFile, type RuleFile } from './rules';

/**
 * scalingAlerts' own settings, next to the shared ones of shared/config.ts (Consul, project,
 * DRY_RUN, COMPUTE_API_ENDPOINT, ORCHESTRATOR_KV_PREFIX):
 *   SCALING_RULES_FILE     path of the rule file (JSON), e.g. a mounted secret or config file; or
 *   SCALING_RULES_JSON     the rule file inline (exactly one of the two)
 *   SCALING_ALERTS_METRICS false: publish no metrics (default true; needs GOOGLE_CLOUD_PROJECT)
 *   SCALING_ALERTS_OPERATION_TIMEOUT_MS  how long a Compute operation is awaited (default 60000)
 *   SCALING_ALERTS_MAX_ATTEMPTS          attempts per autoscaler while another operation runs (default 5)
 */
const envSchema = z.object({
  SCALING_RULES_FILE: z.string().min(1).optional(),
  SCALING_RULES_JSON: z.string().min(1).max(1_000_000).optional(),
  SCALING_ALERTS_METRICS: z.stringbool().default(true),
  SCALING_ALERTS_OPERATION_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
  SCALING_ALERTS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
});

export interface ScalingAlertsConfig {
  rules: RuleFile;
  metrics: boolean;
  operationTimeoutMs: number;
  maxAttempts: number;
}

/** Reads and validates the rule file and settings; throws ConfigError naming what is wrong. */
export function loadScalingAlertsConfig(env: NodeJS.ProcessEnv = process.env): ScalingAlertsConfig {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  const e = parsed.data;
  if ((e.SCALING_RULES_FILE === undefined) === (e.SCALING_RULES_JSON === undefined))
    throw new ConfigError('exactly one of SCALING_RULES_FILE and SCALING_RULES_JSON must be set');
  let text: string;
  const source = e.SCALING_RULES_FILE ?? 'SCALING_RULES_JSON';
  if (e.SCALING_RULES_FILE !== undefined) {
    try {
      text = readFileSync(e.SCALING_RULES_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `SCALING_RULES_FILE: cannot read ${e.SCALING_RULES_FILE}: ${(err as Error).message}`,
      );
    }
  } else {
    text = e.SCALING_RULES_JSON ?? '';
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ConfigError(`${source}: not JSON`);
  }
  const rules = parseRuleFile(data);
  if (!rules.ok) throw new ConfigError(`${source}: ${rules.reason}`);
  return {
    rules: rules.rules,
    metrics: e.SCALING_ALERTS_METRICS,
    operationTimeoutMs: e.SCALING_ALERTS_OPERATION_TIMEOUT_MS,
    maxAttempts: e.SCALING_ALERTS_MAX_ATTEMPTS,
  };
}
