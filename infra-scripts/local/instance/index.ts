/**
 * Runs one local "instance" of a role from the very files the images bake (packer/<role>/ and
 * packer/consul/files): `install-role.sh` lays them out under a temp root, then the role's systemd
 * units run in their order (ExecStartPre, ExecStart, ExecStartPost, EnvironmentFile, KillSignal,
 * ExecStop; a `-` command may fail, as in systemd), with
 * the image's absolute paths mapped into that root and to the locally built tools.
 *
 *   const md = createMetadataServer();
 *   const host = await md.addInstance({ ..., ip, attributes: {
 *     'consul-servers': '127.9.9.1 127.9.9.2 127.9.9.3', 'consul-gossip-key': key } });
 *   // its agent logs in with its identity token (scenarios/acl.ts sets up the auth method)
 *   const instance = await launchInstance({ role: 'backend', ip, metadataHost: host });
 *   await instance.shutdown();   // graceful: the role's shutdown script (maintenance, drain, leave), then stop
 *   await instance.kill();       // crash / preemption: SIGKILL, no shutdown script
 *
 * Needs `npm run build` (the apps run from dist/) and the tools from install-tools.sh.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

import { roles, type Role } from '../../../shared/contract';
import { agentProbe, hasLeader } from '../launch/consul';
import { startProcess, type ManagedProcess } from '../launch/process';
import { repoRoot, toolPath } from '../launch/tools';

const run = promisify(execFile);

export { roles, type Role };

export const launchOptionsSchema = z.object({
  role: z.enum(roles),
  /** The instance's own loopback address; every process binds it. */
  ip: z.ipv4(),
  /** GCE_METADATA_HOST for this instance (see ../metadata-server.ts). */
  metadataHost: z.string().min(1),
  /** How long an ExecStop (the shutdown script) may run before it is cut, as GCE's shutdown window. */
  shutdownTimeoutMs: z.number().int().positive().default(60_000),
});

export type LaunchOptions = z.input<typeof launchOptionsSchema> & {
  onOutput?: (unit: string, chunk: string) => void;
};

export interface LocalInstance {
  role: Role;
  ip: string;
  /** Where the instance's /etc, /opt and /run live. */
  root: string;
  /** Long-running processes by unit name. */
  processes: Map<string, ManagedProcess>;
  /** Graceful stop: ExecStop of every unit in reverse order (the shutdown script), then their processes. */
  shutdown(): Promise<void>;
  /** Abrupt stop (crash, preemption): SIGKILL, no shutdown script. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT every process. */
  freeze(frozen: boolean): void;
  /** `systemctl restart` of one long-running unit: its KillSignal, then its ExecStart again. */
  restart(unit: string): Promise<void>;
}

export interface Unit {
  name: string;
  type: string;
  environmentFiles: string[];
  environment: Record<string, string>;
  execStartPre: string[];
  execStart: string | undefined;
  /** Run once ExecStart is up (for a long-running process: once it is ready). */
  execStartPost: string[];
  execStop: string | undefined;
  killSignal: NodeJS.Signals;
}

/** Pure: the parts of a systemd unit this launcher honours. */
export function parseUnit(name: string, text: string): Unit {
  const unit: Unit = {
    name,
    type: 'simple',
    environmentFiles: [],
    environment: {},
    execStartPre: [],
    execStart: undefined,
    execStartPost: [],
    execStop: undefined,
    killSignal: 'SIGTERM',
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (!line || line.startsWith('#') || line.startsWith('[') || eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'Type') unit.type = value;
    else if (key === 'EnvironmentFile') unit.environmentFiles.push(value.replace(/^-/, ''));
    else if (key === 'Environment') {
      const [k, ...v] = value.split('=');
      unit.environment[k!] = v.join('=');
    } else if (key === 'ExecStartPre') unit.execStartPre.push(value);
    else if (key === 'ExecStart') unit.execStart = value;
    else if (key === 'ExecStartPost') unit.execStartPost.push(value);
    else if (key === 'ExecStop') unit.execStop = value;
    else if (key === 'KillSignal') unit.killSignal = value as NodeJS.Signals;
  }
  return unit;
}

/** Pure: systemd's command line: quotes, `${VAR}`/`$VAR` from the unit's environment, `$$` for `$`. */
export function splitCommand(line: string, env: Record<string, string | undefined>): string[] {
  const expanded = line
    .replace(/^[-@+!]+/, '')
    .replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (m, a?: string, b?: string) => (m === '$$' ? '\uE000' : (env[(a ?? b)!] ?? '')),
    );
  const words: string[] = [];
  let current = '';
  let quote: string | undefined;
  let inWord = false;
  for (const c of expanded) {
    if (quote) {
      if (c === quote) quote = undefined;
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words.map((w) => w.replace(/\uE000/g, '$'));
}

/** Pure: `KEY=value` lines (an EnvironmentFile). */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** The image's absolute paths, mapped into the instance root and to the local tools. */
export function pathMapper(root: string): (text: string) => string {
  const app = repoRoot();
  const pairs: [string, string][] = [
    ['/usr/bin/node', process.execPath],
    ['/usr/local/bin/consul-template', toolPath('consul-template')],
    ['/usr/local/bin/consul', toolPath('consul')],
    ['/usr/sbin/haproxy', toolPath('haproxy')],
    ['/usr/sbin/dnsmasq', toolPath('dnsmasq')],
    ['/opt/ilb/app/', `${app}/`],
    ['/etc/', `${root}/etc/`],
    ['/run/', `${root}/run/`],
    ['/opt/', `${root}/opt/`],
  ];
  const pattern = new RegExp(
    `(?<![\\w./-])(${pairs.map(([from]) => from.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})`,
    'g',
  );
  const table = new Map(pairs);
  return (text) => text.replace(pattern, (m) => table.get(m) ?? m);
}

const packerDir = () => path.join(repoRoot(), 'packer');

export async function launchInstance(options: LaunchOptions): Promise<LocalInstance> {
  const opts = launchOptionsSchema.parse(options);
  const root = await mkdtemp(path.join(os.tmpdir(), `ilb-${opts.role}-`));
  const map = pathMapper(root);
  const toolsDir = path.dirname(toolPath('consul'));
  const baseEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${toolsDir}:${process.env.PATH ?? ''}:/usr/sbin:/sbin`,
    ILB_ROOT: root,
    GCE_METADATA_HOST: opts.metadataHost,
    CONSUL_CLIENT_ADDR: opts.ip,
    ILB_DNS_LISTEN: opts.ip,
  };
  await run('bash', [path.join(packerDir(), 'consul/files/install-role.sh'), opts.role, packerDir()], {
    env: baseEnv,
  });
  // The configs consul-template reads carry image paths too.
  for (const file of ['consul-template.hcl', 'haproxy.cfg.ctmpl']) {
    const target = path.join(root, 'etc/consul-template', file);
    const text = await readFile(target, 'utf8').catch(() => undefined);
    if (text !== undefined) await writeFile(target, map(text));
  }

  const unitNames = (await readFile(path.join(root, 'etc/ilb/units'), 'utf8')).trim().split(/\s+/);
  const processes = new Map<string, ManagedProcess>();
  const started: Unit[] = [];
  const output = (unit: string) => (chunk: string) => options.onOutput?.(unit, chunk);

  const unitEnv = async (unit: Unit): Promise<NodeJS.ProcessEnv> => {
    const env: NodeJS.ProcessEnv = { ...baseEnv, ...unit.environment };
    for (const file of unit.environmentFiles) {
      Object.assign(env, parseEnvFile(await readFile(map(file), 'utf8')));
    }
    return env;
  };
  const runOnce = async (unit: Unit, line: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000) => {
    // The prefix (`-` and the like) goes first: the image paths behind it are mapped too.
    const [command, ...args] = splitCommand(map(line.replace(/^[-@+!]+/, '')), env as Record<string, string>);
    try {
      const result = await run(command!, args, { env, timeout: timeoutMs, maxBuffer: 8 << 20 });
      output(unit.name)(result.stdout + result.stderr);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      const failure = `${unit.name}: ${line} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`;
      // systemd's `-` prefix: the command's failure does not fail the unit.
      if (line.startsWith('-')) output(unit.name)(failure);
      else throw new Error(failure);
    }
  };

  const instance: LocalInstance = {
    role: opts.role,
    ip: opts.ip,
    root,
    processes,
    async shutdown() {
      for (const unit of [...started].reverse()) {
        if (!unit.execStop) continue;
        await runOnce(unit, unit.execStop, await unitEnv(unit), opts.shutdownTimeoutMs).catch(
          (err: unknown) => output(unit.name)(`shutdown script: ${String(err)}\n`),
        );
      }
      for (const unit of [...started].reverse()) await processes.get(unit.name)?.stop(unit.killSignal);
      await rm(root, { recursive: true, force: true });
    },
    async kill() {
      await Promise.all([...processes.values()].map((p) => p.kill()));
      await rm(root, { recursive: true, force: true });
    },
    freeze(frozen) {
      for (const p of processes.values()) p.signal(frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    async restart(name) {
      const unit = started.find((u) => u.name === name);
      const proc = processes.get(name);
      if (!unit || !proc) throw new Error(`${name} is not a running unit of this instance`);
      await proc.stop(unit.killSignal);
      processes.set(name, await startProcess(proc.spec));
    },
  };

  try {
    for (const name of unitNames) {
      const unit = parseUnit(
        name,
        await readFile(path.join(root, 'etc/systemd/system', `${name}.service`), 'utf8'),
      );
      started.push(unit);
      const env = await unitEnv(unit);
      for (const line of unit.execStartPre) await runOnce(unit, line, env);
      if (!unit.execStart) continue;
      if (unit.type === 'oneshot') {
        await runOnce(unit, unit.execStart, env);
        for (const line of unit.execStartPost) await runOnce(unit, line, env);
        continue;
      }
      const [command, ...args] = splitCommand(map(unit.execStart), env as Record<string, string>);
      const proc = await startProcess({
        name: `${opts.role}@${opts.ip} ${name}`,
        command: command!,
        args,
        env,
        onOutput: output(name),
        stopTimeoutMs: 30_000,
        ready: name === 'consul' ? () => hasLeader(agentProbe(opts.ip)) : undefined,
      });
      processes.set(name, proc);
      for (const line of unit.execStartPost) await runOnce(unit, line, env);
    }
  } catch (err) {
    await instance.kill();
    throw err;
  }
  return instance;
}
