import { copyFile, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';

import { createLogger } from '../../shared/logging';
import { backendName, parseRenderedConfig } from './config';
import { planSync } from './plan';
import { haproxyCommand, parseRuntime } from './runtime';

/**
 * haproxy-sync: consul-template's command after each render of haproxy.cfg. Applies the server
 * list through HAProxy's runtime API; reloads (master-worker, hitless) only for structural changes.
 *   node main.js --config /etc/haproxy/haproxy.cfg --admin-socket S --master-socket M
 * `<config>.applied` holds the config the running HAProxy loaded (written at start and on reload).
 */
const argsSchema = z.object({
  config: z.string().min(1),
  'admin-socket': z.string().min(1),
  'master-socket': z.string().min(1),
});

const logger = createLogger({ name: 'haproxy-sync' });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      'admin-socket': { type: 'string' },
      'master-socket': { type: 'string' },
    },
  });
  const args = argsSchema.parse(values);
  const appliedPath = `${args.config}.applied`;
  const rendered = parseRenderedConfig(await readFile(args.config, 'utf8'));
  const applied = await readFile(appliedPath, 'utf8').catch(() => undefined);
  if (applied === undefined) {
    logger.info('HAProxy has not started yet; it will load the rendered file');
    return;
  }
  const structureChanged = parseRenderedConfig(applied).structure !== rendered.structure;

  let running;
  try {
    const [state, stat] = await Promise.all([
      haproxyCommand(args['admin-socket'], `show servers state ${backendName}`),
      haproxyCommand(args['admin-socket'], 'show stat -1 4 -1'),
    ]);
    running = parseRuntime(state, stat, backendName);
  } catch (err) {
    logger.warn({ err }, 'HAProxy runtime API unreachable; it will load the rendered file when it starts');
    return;
  }

  const plan = planSync(backendName, rendered.slots, running, structureChanged);
  if (plan.kind === 'noop') {
    logger.info('servers already match');
    return;
  }
  if (plan.kind === 'reload') {
    // The master re-reads the file; keep a copy of what the new worker loads before asking.
    await copyFile(args.config, appliedPath);
    const answer = await haproxyCommand(args['master-socket'], 'reload');
    logger.info({ reason: plan.reason, answer: answer.trim() }, 'hitless reload requested');
    return;
  }
  const failures: string[] = [];
  for (const command of plan.commands) {
    const answer = (await haproxyCommand(args['admin-socket'], command)).trim();
    // Successful `set server` answers are empty or an "IP changed"/"port changed" notice.
    if (answer && !/changed from|no need to change/i.test(answer)) failures.push(`${command}: ${answer}`);
  }
  if (failures.length) {
    await copyFile(args.config, appliedPath);
    const answer = await haproxyCommand(args['master-socket'], 'reload');
    logger.warn({ failures, answer: answer.trim() }, 'runtime changes failed; hitless reload instead');
    return;
  }
  logger.info(
    { added: plan.added, removed: plan.removed, commands: plan.commands.length },
    'servers updated live',
  );
}

main().catch((err: unknown) => {
  logger.error({ err }, 'haproxy-sync failed');
  process.exit(1);
});
