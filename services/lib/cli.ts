import { parseArgs } from 'node:util';
import { z } from 'zod';

const listenSchema = z.object({
  host: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65535),
});

export type ListenOptions = z.infer<typeof listenSchema>;

/** Parses `--host` and `--port` (plus the extra string options given), validated. */
export function parseListenArgs<K extends string>(
  argv: string[],
  defaults: ListenOptions,
  extra: readonly K[] = [],
): ListenOptions & Partial<Record<K, string>> {
  const options: Record<string, { type: 'string' }> = { host: { type: 'string' }, port: { type: 'string' } };
  for (const key of extra) options[key] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const listen = listenSchema.parse({
    host: values.host ?? defaults.host,
    port: values.port ?? defaults.port,
  });
  const rest: Partial<Record<K, string>> = {};
  for (const key of extra) {
    const value = values[key];
    if (typeof value === 'string') rest[key] = value;
  }
  return { ...rest, ...listen };
}

/** Runs `shutdown` once on SIGTERM/SIGINT, then exits. */
export function onTermination(shutdown: (signal: string) => Promise<void>): void {
  let started = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (started) return;
      started = true;
      shutdown(signal).then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
