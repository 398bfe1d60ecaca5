import { execFile } from 'node:child_process';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

import type { Logger } from '../../shared/logging';
import { backendName, parseRenderedConfig, type RenderedConfig } from './config';
import { gateSlots, sanitise, skippedByReason, type RoutingPolicy } from './gate';
import { isSafeCommand, planSync, structureChange } from './plan';
import { haproxyCommand, readRuntime } from './runtime';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SyncOptions {
  /** The file consul-template renders; HAProxy runs `<config>.applied`. */
  config: string;
  haproxy: string;
  adminSocket: string;
  masterSocket: string;
  /** Two reloads never come closer than this: a catalog flapping across a slot step is no reload storm. */
  minReloadIntervalMs: number;
  /** Asked on every run: the tier's subnets and the local agent's alive members. */
  policy: () => Promise<RoutingPolicy>;
}

/**
 * What HAProxy may load from one render: the registrations the template, the parser or the routing
 * gate refused become unused slots (never a reason to refuse the whole render), and are counted by
 * reason (`routing_skipped{reason}` in the log, for a log-based metric).
 */
export function effectiveRender(text: string, policy: RoutingPolicy) {
  const raw = parseRenderedConfig(text);
  const { gated } = gateSlots(raw, policy);
  const loadable = sanitise(text, raw, gated);
  return { raw, gated, loadable, rendered: parseRenderedConfig(loadable) };
}

/** Logs what was left out of HAProxy and why. */
export function report(logger: Logger, render: ReturnType<typeof effectiveRender>): void {
  const counts = skippedByReason(render.raw, render.gated);
  if (Object.keys(counts).length === 0) return;
  logger.warn(
    {
      routing_skipped: counts,
      skipped: [
        ...render.raw.skipped,
        ...render.gated.map((g) => ({ reason: g.reason, node: g.slot.node, address: g.slot.addr })),
      ].slice(0, 20),
      rejected: render.raw.rejected.slice(0, 20),
    },
    'backend registrations left out of HAProxy',
  );
}

let candidates = 0;

/**
 * Checks `text` with `haproxy -c` and makes it the applied config; false (logged) if it fails.
 * `current`: asked after the check; false leaves the applied file alone (a newer install began).
 */
export async function install(
  logger: Logger,
  options: Pick<SyncOptions, 'config' | 'haproxy'>,
  text: string,
  current: () => boolean = () => true,
): Promise<boolean> {
  // One file per install: haproxy.service's --prepare may run next to the daemon, and the daemon's
  // background refresh next to a reload; none may rename a file another wrote after its own check.
  const candidate = `${options.config}.candidate.${process.pid}.${++candidates}`;
  await writeFile(candidate, text, { mode: 0o640 });
  try {
    await run(options.haproxy, ['-c', '-q', '-f', candidate], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    logger.error(
      { output: `${e.stdout ?? ''}${e.stderr ?? ''}`.slice(0, 4000) || e.message },
      'haproxy -c rejected the rendered config; HAProxy keeps running the previous one',
    );
    await rm(candidate, { force: true });
    return false;
  }
  if (!current()) {
    await rm(candidate, { force: true });
    return false;
  }
  await rename(candidate, `${options.config}.applied`);
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
 * One applier for the daemon's life: each `sync()` brings the running HAProxy to the newest render.
 * It remembers only what keeps it quiet and safe between runs: the last render it reported, the
 * render it refused (not retried nor logged again until the file changes) and the last reload.
 */
export function createSync(logger: Logger, options: SyncOptions) {
  const applied = `${options.config}.applied`;
  let reported: string | undefined;
  let refused: string | undefined;
  let unreachable = false;
  let lastReload = 0;
  /** Bumped by every reload's install: a background refresh that began before it never lands. */
  let generation = 0;
  let refreshing = false;
  let refreshFailed: string | undefined;

  /**
   * A checked, hitless reload. The new worker starts from the config alone; once it answers with
   * the new slots, the next run applies what the config cannot say (drain) to it.
   * Returns a delay after which to try again, if the reload had to wait.
   */
  async function reload(
    text: string,
    loadable: string,
    rendered: RenderedConfig,
    why: object,
  ): Promise<number | undefined> {
    const wait = lastReload + options.minReloadIntervalMs - Date.now();
    if (wait > 0) {
      logger.info({ ...why, waitMs: wait }, 'reload deferred: the last one was too recent');
      return wait;
    }
    generation++;
    if (!(await install(logger, options, loadable))) {
      refused = text;
      return undefined;
    }
    lastReload = Date.now();
    const before = await workerPid(options.adminSocket);
    const answer = await haproxyCommand(options.masterSocket, 'reload');
    logger.info({ ...why, answer: answer.trim() }, 'hitless reload requested');
    const names = rendered.slots
      .map((s) => s.name)
      .sort()
      .join();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      await sleep(50);
      const pid = await workerPid(options.adminSocket);
      if (!pid || pid === before) continue;
      const running = await readRuntime(options.adminSocket, backendName).catch(() => []);
      const runningNames = running
        .map((s) => s.name)
        .sort()
        .join();
      if (runningNames === names) return 0;
    }
    logger.error('the new worker did not answer with the rendered slots in 20 s');
    return undefined;
  }

  /**
   * Brings HAProxy to the rendered file. Returns a delay in ms after which it wants to run again
   * (a deferred reload, or the states to apply to a new worker), or undefined. `quiet`: no render
   * came since the last run, so the applied file may be brought up to date (a `haproxy -c`).
   */
  async function sync(quiet = false): Promise<number | undefined> {
    const text = await readFile(options.config, 'utf8').catch(() => undefined);
    // Before the first render, or before haproxy.service's --prepare: nothing runs yet.
    const appliedText = await readFile(applied, 'utf8').catch(() => undefined);
    if (text === undefined || appliedText === undefined || text === refused) return undefined;
    refused = undefined;
    const render = effectiveRender(text, await options.policy());
    const { rendered, loadable } = render;
    if (loadable !== reported) {
      report(logger, render);
      reported = loadable;
    }

    let running;
    try {
      running = await readRuntime(options.adminSocket, backendName);
    } catch (err) {
      if (!unreachable) logger.warn({ err }, 'HAProxy runtime API unreachable; retrying');
      unreachable = true;
      return undefined;
    }
    if (unreachable) logger.info('HAProxy runtime API reachable again');
    unreachable = false;

    const why = structureChange(parseRenderedConfig(appliedText), rendered, running);
    const plan = planSync(backendName, rendered.slots, running, why !== undefined);
    if (plan.kind === 'reload') return reload(text, loadable, rendered, { reason: why ?? plan.reason });
    if (plan.kind === 'noop') {
      // Idle: keep the applied file at the live servers, so that a restarted HAProxy starts with
      // them. Only a structure the worker runs already, only what the gate let through, and in
      // the background: its `haproxy -c` never delays the next change.
      if (quiet && !refreshing && loadable !== appliedText && loadable !== refreshFailed) {
        refreshing = true;
        const started = generation;
        void install(logger, options, loadable, () => started === generation)
          .then((done) => {
            if (done) logger.debug('applied config follows the live servers');
            else if (started === generation) refreshFailed = loadable;
          })
          .catch((err: unknown) => logger.warn({ err }, 'could not refresh the applied config'))
          .finally(() => (refreshing = false));
      }
      return undefined;
    }
    const failures = await apply(options.adminSocket, plan.commands);
    if (failures.length) {
      logger.warn({ failures }, 'runtime changes failed; hitless reload instead');
      return reload(text, loadable, rendered, { reason: 'runtime changes failed' });
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
    return undefined;
  }

  return { sync };
}
