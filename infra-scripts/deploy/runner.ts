import type { Check, Command, Plan, Step, Stdin } from './plan';

/** Runs one `gcloud` command: arguments without the program name, optional stdin. */
export type Exec = (
  args: string[],
  stdin?: string,
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Secret material for a step's commands; one TLS bundle per step. */
export interface Generators {
  gossipKey(): string;
  uuid(): string;
  tls(spec: { dnsNames: string[]; ips: string[] }): Promise<{
    'ca-cert': string;
    'ca-key': string;
    'server-cert': string;
    'server-key': string;
  }>;
}

export interface RunOptions {
  exec: Exec;
  generators: Generators;
  log: (line: string) => void;
  dryRun?: boolean;
  /** How to run it again, for the message after a failure. */
  rerun: string;
}

export type RunResult =
  /** `left`: the titles of the steps left for a later run (teardown), when there are any. */
  | { ok: true; ran: number; skipped: number; left?: string[] }
  | { ok: false; step: number; total: number; command: string; error: string };

const quote = (a: string) => (/^[A-Za-z0-9_@%+=:,./{}-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
export const show = (args: string[]) => ['gcloud', ...args].map(quote).join(' ');

const describeStdin = (s: Stdin) =>
  'secret' in s ? `  < ${s.secret} (generated, not printed)` : `  < script on stdin (${s.lines} lines)`;

/** Evaluates a check's answer. */
export function checkPasses(check: Check, code: number, stdout: string): boolean {
  if (code !== 0) return false;
  const out = stdout.trim();
  const e = check.expect;
  if (e === 'exists') return true;
  if (e === 'nonEmpty') return out !== '';
  if ('equals' in e) return out === e.equals;
  if ('contains' in e) return out.includes(e.contains);
  try {
    const policy = JSON.parse(out) as {
      bindings?: { role?: string; members?: string[]; condition?: { title?: string } }[];
    };
    return (policy.bindings ?? []).some(
      (b) =>
        b.role === e.binding.role &&
        (b.members ?? []).includes(e.binding.member) &&
        (e.binding.condition === undefined ||
          (e.binding.condition === null
            ? b.condition === undefined
            : b.condition?.title === e.binding.condition)),
    );
  } catch {
    return false;
  }
}

/** The dry run: every step, its check and commands, and what a failure of it would leave. */
function printDryRun(plan: Plan, log: (line: string) => void): void {
  const total = plan.steps.length;
  plan.steps.forEach((step, i) => {
    log(`step ${i + 1} of ${total}: ${step.title}`);
    log(`  ${step.runWhen === 'check-fails' ? 'unless' : 'if'}: ${show(step.check.args)}`);
    for (const cmd of step.run) {
      log(`  run: ${show(cmd.args)}`);
      if (cmd.stdin) log(describeStdin(cmd.stdin));
    }
    if (step.later)
      log(`  on an error matching /${step.later.error}/: left for a later run (${step.later.why})`);
    if (step.after) log(`  left for a later run when ${step.after} is`);
  });
  log(`dry run: ${total} steps listed, nothing was run`);
}

class StepError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

/**
 * Executes a plan: for each step, the check first, then its commands when needed. Prints
 * "step N of M"; stops at the first failure with the command and how to resume (a rerun finds the
 * finished steps done). A dry run prints every command and runs nothing, not even the checks.
 */
export async function runPlan(plan: Plan, opts: RunOptions): Promise<RunResult> {
  const { exec, log } = opts;
  const total = plan.steps.length;
  const cache = new Map<string, string>();

  async function lookup(name: string, seen: string[]): Promise<string> {
    const cached = cache.get(name);
    if (cached !== undefined) return cached;
    const args = plan.lookups[name];
    if (!args) throw new Error(`unknown lookup @{${name}}`);
    if (seen.includes(name)) throw new Error(`lookup cycle: ${[...seen, name].join(' → ')}`);
    const resolved = await resolveArgs(args, [...seen, name]);
    const r = await exec(resolved);
    const value = r.stdout.trim();
    if (r.code !== 0 || value === '') {
      throw new StepError(
        `lookup @{${name}} found nothing${r.stderr ? `: ${r.stderr.trim()}` : ''}`,
        show(resolved),
      );
    }
    cache.set(name, value);
    return value;
  }

  async function resolveArgs(args: string[], seen: string[] = []): Promise<string[]> {
    const out: string[] = [];
    for (const arg of args) {
      const whole = /^@\{([A-Za-z0-9_-]+)\}$/.exec(arg);
      if (whole) {
        // A lookup standing alone may name several resources (one per line).
        out.push(
          ...(await lookup(whole[1] as string, seen))
            .split('\n')
            .map((s) => s.trim())
            .filter(Boolean),
        );
        continue;
      }
      out.push(await substitute(arg, seen));
    }
    return out;
  }

  async function substitute(text: string, seen: string[] = []): Promise<string> {
    let s = text;
    for (const m of text.matchAll(/@\{([A-Za-z0-9_-]+)\}/g)) {
      s = s.replace(m[0], await lookup(m[1] as string, seen));
    }
    return s;
  }

  /** The check with the lookups in its expectation resolved too (e.g. a binding's member). */
  async function resolveCheck(check: Check): Promise<Check> {
    const e = check.expect;
    if (typeof e === 'string') return check;
    if ('equals' in e) return { ...check, expect: { equals: await substitute(e.equals) } };
    if ('contains' in e) return { ...check, expect: { contains: await substitute(e.contains) } };
    const member = await substitute(e.binding.member);
    return {
      ...check,
      expect: { binding: { ...e.binding, role: await substitute(e.binding.role), member } },
    };
  }

  async function stdinFor(cmd: Command, step: Step, tls: { value?: Awaited<ReturnType<Generators['tls']>> }) {
    const s = cmd.stdin;
    if (!s) return undefined;
    if ('script' in s) return s.script;
    switch (s.secret) {
      case 'gossip-key':
        return opts.generators.gossipKey();
      case 'uuid':
        return opts.generators.uuid();
      default:
        if (!step.tls) throw new Error(`step ${step.id}: ${s.secret} without a TLS spec`);
        tls.value ??= await opts.generators.tls(step.tls);
        return tls.value[s.secret];
    }
  }

  if (opts.dryRun) {
    printDryRun(plan, log);
    return { ok: true, ran: 0, skipped: total };
  }

  let ran = 0;
  const left: Step[] = [];
  for (const [i, step] of plan.steps.entries()) {
    const n = i + 1;
    let current = '';
    try {
      const waitsFor = left.find((s) => s.id === step.after);
      if (waitsFor) {
        log(`step ${n} of ${total}: ${step.title}: left for a later run (after: ${waitsFor.title})`);
        left.push(step);
        continue;
      }
      const checkArgs = await resolveArgs(step.check.args);
      current = show(checkArgs);
      const r = await exec(checkArgs);
      const passes = checkPasses(await resolveCheck(step.check), r.code, r.stdout);
      const needed = step.runWhen === 'check-fails' ? !passes : passes;
      if (!needed) {
        log(
          `step ${n} of ${total}: ${step.title}: ${step.runWhen === 'check-fails' ? 'already done' : 'nothing to do'}`,
        );
        continue;
      }
      log(`step ${n} of ${total}: ${step.title}`);
      const tls: { value?: Awaited<ReturnType<Generators['tls']>> } = {};
      let deferred = false;
      for (const cmd of step.run) {
        const args = await resolveArgs(cmd.args);
        current = show(args);
        log(`  ${current}${cmd.stdin ? `\n${describeStdin(cmd.stdin)}` : ''}`);
        const res = await exec(args, await stdinFor(cmd, step, tls));
        if (res.code === 0) continue;
        const error = res.stderr.trim() || `exit code ${res.code}`;
        if (!step.later || !new RegExp(step.later.error).test(error)) throw new StepError(error, current);
        log(`  left for a later run: ${step.later.why}`);
        log(`  error: ${error}`);
        deferred = true;
        break;
      }
      if (deferred) left.push(step);
      else ran += 1;
    } catch (err) {
      const command = err instanceof StepError ? err.command : current;
      const error = (err as Error).message;
      log(`step ${n} of ${total} failed: ${step.title}`);
      log(`  command: ${command}`);
      log(`  error: ${error}`);
      log(`Fix the cause and run again to resume (finished steps are found and skipped): ${opts.rerun}`);
      return { ok: false, step: n, total, command, error };
    }
  }
  const done = total - ran - left.length;
  log(`done: ${ran} of ${total} steps changed something, ${done} were already in place`);
  if (left.length === 0) return { ok: true, ran, skipped: done };
  const titles = left.map((s) => s.title);
  log(`${left.length} left for a later run; rerun later to remove: ${titles.join('; ')}`);
  log(`  ${opts.rerun}`);
  return { ok: true, ran, skipped: done, left: titles };
}
