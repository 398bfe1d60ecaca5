import type { Logger } from '../shared/logging';
import type { Decision } from '../shared/outcome';

/**
 * The entry point this process serves: the Functions Framework's `--target` flag, else
 * `FUNCTION_TARGET` (set by Cloud Run functions), as the framework itself decides. Undefined when
 * the module is loaded without one (tests, the deploy reading the exports).
 */
export function servedTarget(
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv,
): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg.startsWith('--target=')) return arg.slice('--target='.length);
    if (arg === '--target') return argv[i + 1];
  }
  return env.FUNCTION_TARGET || undefined;
}

/**
 * A function's configuration and handler, built once. When this process serves one of `targets`, it
 * is built now, at load: an invalid configuration ends the process with one log line, so a deploy
 * fails loudly instead of every delivery failing until the dead-letter topic. Every deployed
 * function has only its own environment, so the other targets exported beside it are not built.
 * Loaded without a target, it is built on first use.
 */
export function prepared<T>(targets: readonly string[], logger: Logger, build: () => T): () => T {
  let built: { value: T } | undefined;
  const get = () => (built ??= { value: build() }).value;
  const target = servedTarget();
  if (target !== undefined && targets.includes(target)) {
    try {
      get();
    } catch (err) {
      logger.fatal(
        {
          decision: 'failed' satisfies Decision,
          reason: err instanceof Error ? err.message : String(err),
          target,
        },
        `${target} cannot start: invalid configuration`,
      );
      process.exit(1);
    }
  }
  return get;
}
