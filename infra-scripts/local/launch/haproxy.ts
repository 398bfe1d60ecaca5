import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { tcpOpen } from './net';
import { startProcess, type ManagedProcess } from './process';
import { toolPath } from './tools';

const run = promisify(execFile);

export interface HaproxyOptions {
  /** The complete haproxy.cfg text. */
  config: string;
  /** An address HAProxy listens on once ready. */
  waitFor?: { host: string; port: number };
}

export interface Haproxy {
  configFile: string;
  process: ManagedProcess;
  /** Hitless reload of the master-worker (SIGUSR2) after the config file changed. */
  reload(): void;
  stop(): Promise<void>;
}

/** `haproxy -c`: throws with HAProxy's message when the config is invalid. */
export async function checkHaproxyConfig(configFile: string): Promise<void> {
  await run(toolPath('haproxy'), ['-c', '-q', '-f', configFile]);
}

/** HAProxy in master-worker mode in the foreground, with its config in a temp dir. */
export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'haproxy-'));
  const configFile = path.join(dir, 'haproxy.cfg');
  await writeFile(configFile, options.config);
  await checkHaproxyConfig(configFile);
  const target = options.waitFor;
  const proc = await startProcess({
    name: 'haproxy',
    command: toolPath('haproxy'),
    args: ['-W', '-db', '-f', configFile],
    cwd: dir,
    readyTimeoutMs: 15_000,
    ready: async () => (target ? tcpOpen(target.host, target.port) : true),
  });
  return {
    configFile,
    process: proc,
    reload: () => proc.signal('SIGUSR2'),
    stop: async () => {
      await proc.stop('SIGUSR1'); // soft stop: finish the connections in flight
      await rm(dir, { recursive: true, force: true });
    },
  };
}
