import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { InstanceDriver, InstanceSpec } from './driver';

/**
 * An instance as one real process: `command` runs with the instance's identity in its environment
 * (INSTANCE_NAME, INSTANCE_ID, INSTANCE_IP, INSTANCE_ZONE) and SIGTERM plays the shutdown script.
 * Enough to exercise the REST surface and the lifecycle; the sandbox uses the issue-3 launcher.
 */
export class ProcessDriver implements InstanceDriver {
  private readonly procs = new Map<string, ChildProcess>();
  private readonly ticks = new Map<string, { at: number; ticks: number }>();

  constructor(private readonly command: string[]) {}

  async create(spec: InstanceSpec): Promise<void> {
    const [cmd, ...args] = this.command;
    const child = spawn(cmd!, args, {
      stdio: 'ignore',
      env: {
        ...process.env,
        INSTANCE_NAME: spec.name,
        INSTANCE_ID: spec.id,
        INSTANCE_IP: spec.ip,
        INSTANCE_ZONE: spec.zone,
      },
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.procs.set(spec.id, child);
  }

  async shutdown(id: string, timeoutMs: number): Promise<void> {
    await this.stop(id, 'SIGTERM', timeoutMs);
  }

  async kill(id: string): Promise<void> {
    await this.stop(id, 'SIGKILL', 5000);
  }

  async freeze(id: string, frozen: boolean): Promise<void> {
    this.procs.get(id)?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  async cpu(id: string): Promise<number | undefined> {
    const pid = this.procs.get(id)?.pid;
    if (pid === undefined) return undefined;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (!stat) return undefined;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime + stime, in clock ticks (100 per second on Linux).
    const ticks = Number(fields[11]) + Number(fields[12]);
    const now = Date.now();
    const prev = this.ticks.get(id);
    this.ticks.set(id, { at: now, ticks });
    if (!prev || now <= prev.at) return undefined;
    return (ticks - prev.ticks) / 100 / ((now - prev.at) / 1000);
  }

  /** Pids of live instance processes, for tests that check nothing is left behind. */
  pids(): number[] {
    return [...this.procs.values()].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  private async stop(id: string, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.procs.get(id);
    this.procs.delete(id);
    this.ticks.delete(id);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    if ((await Promise.race([exited, late])) === 'late') {
      child.kill('SIGKILL');
      await exited;
    }
    clearTimeout(timer);
  }
}
