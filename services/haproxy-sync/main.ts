import { execFile } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { z } from 'zod';

import { createLogger } from '../../shared/logging';
import { backendName, parseRenderedConfig, type RenderedConfig } from './config';
import { isSafeCommand, planSync } from './plan';
import { haproxyCommand, readRuntime } from './runtime';

/**
 * haproxy-sync: consul-template's command after each render of haproxy.cfg. Applies the server
 * list through HAProxy's runtime API; reloads (master-worker, hitless) only for structural changes.
 *   node main.js --config /etc/haproxy/haproxy.cfg --admin-socket S --master-socket M [--haproxy BIN]
 *   node main.js --prepare --config /etc/haproxy/haproxy.cfg [--haproxy BIN]   (before HAProxy starts)
 * HAProxy runs `<config>.applied`, which only this program writes, and only with a render that
 * validated and passed `haproxy -c`: a bad render never reaches the running HAProxy, not even when
 * it reloads or restarts for another reason.
 */
const argsSchema = z.object({
  config: z.string().min(1),
  'admin-socket': z.string().min(1).optional(),
  'master-socket': z.string().min(1).optional(),
  haproxy: z.string().min(1).default('/usr/sbin/haproxy'),
  prepare: z.boolean().default(false),
});
type Args = z.infer<typeof argsSchema>;

const logger = createLogger({ name: 'haproxy-sync' });
const run = promisify(execFile);

/** Logs what the template or the parser refused; true when the render may be loaded. */
function report(rendered: RenderedConfig): boolean {
  if (rendered.skipped.length) {
    logger.warn(
      { skipped: rendered.skipped.slice(0, 20), count: rendered.skipped.length },
      'invalid backend registrations left out of HAProxy',
    );
  }
  if (rendered.rejected.length) {
    logger.error(
      { rejected: rendered.rejected.slice(0, 20), count: rendered.rejected.length },
      'rendered config has invalid server lines; it will not be loaded',
    );
    return false;
  }
  return true;
}

/** Checks `text` with `haproxy -c` and makes it the applied config; false (logged) if it fails. */
async function install(args: Args, text: string): Promise<boolean> {
  const applied = `${args.config}.applied`;
  const candidate = `${args.config}.candidate`;
  await writeFile(candidate, text, { mode: 0o640 });
  try {
    await run(args.haproxy, ['-c', '-q', '-f', candidate], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    logger.error(
      { output: `${e.stdout ?? ''}${e.stderr ?? ''}`.slice(0, 4000) || e.message },
      'haproxy -c rejected the rendered config; HAProxy keeps running the previous one',
    );
    return false;
  }
  await rename(candidate, applied);
  return true;
}

async function workerPid(adminSocket: string): Promise<string | undefined> {
  const info = await haproxyCommand(adminSocket, 'show info').catch(() => '');
  return /^Pid:\s*(\d+)/m.exec(info)?.[1];
}

/** Sends runtime commands; returns the failed ones. */
async function apply(adminSocket: string, commands: string[]): Promise<string[]> {
  const failures: string[] = [];
  for (const command of commands) {
    if (!isSafeCommand(command)) {
      failures.push(`${command.slice(0, 200)}: refused (unexpected command)`);
      continue;
    }
    const answer = (await haproxyCommand(adminSocket, command)).trim();
    // Successful `set server` answers are empty or an "IP changed"/"port changed" notice.
    if (answer && !/changed from|no need to change/i.test(answer)) failures.push(`${command}: ${answer}`);
  }
  return failures;
}

/**
 * A checked, hitless reload. The new worker starts from the config alone, so once it answers
 * with the new slots, the states the config cannot say (drain) are applied to it.
 */
async function reload(args: Required<Args>, text: string, rendered: RenderedConfig, why: object) {
  if (rendered.rejected.length) {
    logger.error({ ...why }, 'reload refused: the rendered config has invalid server lines');
    return;
  }
  if (!(await install(args, text))) return;
  const before = await workerPid(args['admin-socket']);
  const answer = await haproxyCommand(args['master-socket'], 'reload');
  logger.info({ ...why, answer: answer.trim() }, 'hitless reload requested');
  const names = rendered.slots
    .map((s) => s.name)
    .sort()
    .join();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    const pid = await workerPid(args['admin-socket']);
    const running =
      pid && pid !== before ? await readRuntime(args['admin-socket'], backendName).catch(() => []) : [];
    const runningNames = running
      .map((s) => s.name)
      .sort()
      .join();
    if (runningNames !== names) continue;
    // A newer render has its own haproxy-sync run; this one's states would be stale.
    if ((await readFile(args.config, 'utf8')) !== text) return;
    const plan = planSync(backendName, rendered.slots, running, false);
    if (plan.kind !== 'runtime') return;
    const failures = await apply(args['admin-socket'], plan.commands);
    if (failures.length) logger.error({ failures }, 'server states after the reload failed');
    else logger.info({ drained: plan.drained }, 'server states applied to the new worker');
    return;
  }
  logger.error('the new worker did not answer with the rendered slots in 20 s');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      'admin-socket': { type: 'string' },
      'master-socket': { type: 'string' },
      haproxy: { type: 'string' },
      prepare: { type: 'boolean' },
    },
  });
  const args = argsSchema.parse(values);
  const text = await readFile(args.config, 'utf8');
  const rendered = parseRenderedConfig(text);
  const loadable = report(rendered);

  if (args.prepare) {
    // haproxy.service's ExecStartPre: HAProxy starts only from a validated, checked render.
    if (!loadable || !(await install(args, text))) process.exit(1);
    return;
  }
  const adminSocket = args['admin-socket'];
  const masterSocket = args['master-socket'];
  if (!adminSocket || !masterSocket) throw new Error('--admin-socket and --master-socket are required');
  const full = { ...args, 'admin-socket': adminSocket, 'master-socket': masterSocket };

  const applied = await readFile(`${args.config}.applied`, 'utf8').catch(() => undefined);
  if (applied === undefined) {
    logger.info('HAProxy has not started yet; it will load the rendered file');
    return;
  }
  const structureChanged = parseRenderedConfig(applied).structure !== rendered.structure;

  let running;
  try {
    running = await readRuntime(adminSocket, backendName);
  } catch (err) {
    logger.warn({ err }, 'HAProxy runtime API unreachable; it will load the rendered file when it starts');
    return;
  }

  const plan = planSync(backendName, rendered.slots, running, structureChanged);
  if (plan.kind === 'reload') {
    await reload(full, text, rendered, { reason: plan.reason });
    return;
  }
  // Valid slots apply live even next to a rejected line; that file itself is never loaded.
  if (plan.kind === 'noop') {
    logger.info('servers already match');
    return;
  }
  const failures = await apply(adminSocket, plan.commands);
  if (failures.length) {
    logger.warn({ failures }, 'runtime changes failed; hitless reload instead');
    await reload(full, text, rendered, { reason: 'runtime changes failed' });
    return;
  }
  logger.info(
    {
      added: plan.added,
      removed: plan.removed,
      drained: plan.drained,
      undrained: plan.undrained,
      commands: plan.commands.length,
    },
    'servers updated live',
  );
}

main().catch((err: unknown) => {
  logger.error({ err }, 'haproxy-sync failed');
  process.exit(1);
});
