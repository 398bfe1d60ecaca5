import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { PermanentError } from './errors';

/**
 * How every function reads its settings: plain variables through one zod schema (`parseEnv`), and
 * every JSON document as `X_FILE` (a path, e.g. a mounted secret) or `X_JSON` (inline), exactly one
 * of the two (`readJsonSetting`). Both throw ConfigError naming the variable that is wrong.
 */

/** A setting that is missing or wrong: permanent, nothing works until the deploy is fixed. */
export class ConfigError extends PermanentError {
  override name = 'ConfigError';
}

/** Largest inline document accepted. */
const maxInlineChars = 1_000_000;

/** The environment validated by `schema`; an empty variable means unset, as for the consul CLI. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  return parsed.data;
}

/** The text of a file named by a setting; ConfigError naming the setting when it cannot be read. */
export function readSettingFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${path}: ${(err as Error).message}`);
  }
}

const jsonSettingSchema = (name: string) =>
  z.object({
    [`${name}_FILE`]: z.string().trim().min(1).optional(),
    [`${name}_JSON`]: z.string().trim().min(1).max(maxInlineChars).optional(),
  });

/** Whether `${name}_FILE` or `${name}_JSON` is set (not whether it is valid). */
export const jsonSettingGiven = (env: NodeJS.ProcessEnv, name: string): boolean =>
  !!(env[`${name}_FILE`] || env[`${name}_JSON`]);

/**
 * The JSON document of setting `name`, from `${name}_FILE` or `${name}_JSON` (exactly one), checked
 * by `parse` (which throws ConfigError or returns the value). The error names the variable used.
 */
export function readJsonSetting<T>(env: NodeJS.ProcessEnv, name: string, parse: (data: unknown) => T): T {
  const vars = parseEnv(jsonSettingSchema(name), env);
  const file = vars[`${name}_FILE`];
  const inline = vars[`${name}_JSON`];
  if ((file === undefined) === (inline === undefined))
    throw new ConfigError(`exactly one of ${name}_FILE and ${name}_JSON must be set`);
  const source = file !== undefined ? `${name}_FILE` : `${name}_JSON`;
  const text = file !== undefined ? readSettingFile(file, source) : (inline ?? '');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not JSON: ${(err as Error).message}`);
  }
  try {
    return parse(data);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${source}: ${err.message}`);
    throw err;
  }
}
