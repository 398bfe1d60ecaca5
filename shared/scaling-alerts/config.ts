import { z } from 'zod';
import { ConfigError, jsonSettingGiven, parseEnv, readJsonSetting } from '../settings';
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

/** Whether a rule file is given (healthSweep runs the lease pass only then). */
export const scalingRulesGiven = (env: NodeJS.ProcessEnv = process.env): boolean =>
  jsonSettingGiven(env, 'SCALING_RULES');

/** Reads and validates the rule file and settings; throws ConfigError naming what is wrong. */
export function loadScalingAlertsConfig(env: NodeJS.ProcessEnv = process.env): ScalingAlertsConfig {
  const e = parseEnv(envSchema, env);
  const rules = readJsonSetting(env, 'SCALING_RULES', (data) => {
    const parsed = parseRuleFile(data);
    if (!parsed.ok) throw new ConfigError(parsed.reason);
    return parsed.rules;
  });
  return {
    rules,
    metrics: e.SCALING_ALERTS_METRICS,
    operationTimeoutMs: e.SCALING_ALERTS_OPERATION_TIMEOUT_MS,
    maxAttempts: e.SCALING_ALERTS_MAX_ATTEMPTS,
  };
}
