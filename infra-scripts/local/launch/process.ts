import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from './net';

export interface ProcessSpec {
  /** A short label for errors and logs. */
  name: string;
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the process serves; polled until then. */
  ready?: (output: () => string) => Promise<boolean>;
  readyTimeoutMs?: number;
  /** How long `stop()` waits after its signal before it sends SIGKILL. */
  stopTimeoutMs?: number;
  /** Called with each chunk of stdout/stderr (e.g. to forward a sandbox's logs). */
  onOutput?: (chunk: string) => void;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const OUTPUT_LIMIT = 256 * 1024;
const live = new Set<ManagedProcess>();

/** A child process in its own process group, so that stopping it also stops what it started. */
export class ManagedProcess {
  readonly exited: Promise<ExitStatus>;
  private buffer = '';
  private status: ExitStatus | undefined;

  constructor(
    readonly spec: ProcessSpec,
    private readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.buffer = (this.buffer + text).slice(-OUTPUT_LIMIT);
      spec.onOutput?.(text);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.status = { code, signal };
        live.delete(this);
        resolve(this.status);
      });
    });
    live.add(this);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.spec.name} has no pid`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** The last 256 KiB the process printed (stdout and stderr interleaved). */
  output(): string {
    return this.buffer;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // The group is already gone.
    }
  }

  /** Sends `signal` (SIGTERM by default), then SIGKILL if the process outlives the stop timeout. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.signal(signal);
    const escalation = setTimeout(() => this.signal('SIGKILL'), this.spec.stopTimeoutMs ?? 10_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(escalation);
    }
  }

  /** Kills the process group at once, as a crash or a preemption would. */
  async kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }
}

/** Starts a process and waits until `spec.ready` says it serves; fails with its output if it exits first. */
export async function startProcess(spec: ProcessSpec): Promise<ManagedProcess> {
  const child = spawn(spec.command, spec.args ?? [], {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const managed = new ManagedProcess(spec, child);
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (error) => reject(new Error(`${spec.name}: ${error.message}`)));
  });
  await spawned;
  if (!spec.ready) return managed;

  const deadline = Date.now() + (spec.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (!managed.running) {
      const status = await managed.exited;
      throw new Error(
        `${spec.name} exited (code ${status.code}, signal ${status.signal}) before it was ready:\n${managed.output()}`,
      );
    }
    if (await spec.ready(() => managed.output()).catch(() => false)) return managed;
    if (Date.now() > deadline) {
      await managed.kill();
      throw new Error(
        `${spec.name} was not ready after ${spec.readyTimeoutMs ?? 60_000} ms:\n${managed.output()}`,
      );
    }
    await sleep(100);
  }
}

/** Stops every process this Node process started and has not stopped yet. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

// Whatever happens to this process, leave no child behind.
process.once('exit', () => {
  for (const p of live) p.signal('SIGKILL');
});
