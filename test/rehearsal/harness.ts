/**
 * The deploy rehearsal: the real gcloud runs deploy.sh / teardown.sh against the Compute emulator
 * and the stand-in modules, all behind one listener whose journal counts the requests per API. `ssh` on PATH is a recorder: `gcloud compute ssh` generates its key, reads the
 * instance and the project, adds the key to the project's metadata (all through the emulator), then
 * execs `ssh`, which here records its argv and stdin and exits 0 (the deploy has no rehearsal switch
 * for gcloud's own --dry-run, and the ACL script on stdin is what the step is about).
 * gcloud always runs as a child process, never synchronously: this process serves its requests.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { type RehearsalCompute, startCompute } from './compute';
import type { ApiModule, ProjectFacts } from './contract';
import { gcloudEnvironment, type JournalEntry, type StandIn, startStandIn } from './server';

const root = path.resolve(__dirname, '../..');

export interface SshCall {
  args: string[];
  stdin: string;
}

export interface Item {
  api: string;
  kind: string;
  name: string;
}

export interface Rehearsal {
  facts: ProjectFacts;
  standIn: StandIn;
  compute: RehearsalCompute;
  /** The environment every gcloud child gets (also deploy.sh, which runs `gcloud` from PATH). */
  env: NodeJS.ProcessEnv;
  /** The gcloud commands the scripts ran so far (gcloud's own children included), one line each. */
  commands: () => string[];
  ssh(): SshCall[];
  script(name: string, args: string[], input?: string): Promise<{ code: number; out: string }>;
  inventory(): Item[];
  stop(): Promise<void>;
}

const sshRecorder = `#!/usr/bin/env bash
# Stands in for ssh in the rehearsal: records argv and stdin, answers success.
set -euo pipefail
d="$REHEARSAL_SSH_DIR/$(date +%s%N)-$$"
mkdir -p "$d"
printf '%s\\0' "$@" >"$d/argv"
cat >"$d/stdin"
`;

// Counts the commands: the scripts run `gcloud` from PATH, so the wrapper there logs and execs the real one.
const gcloudWrapper = (real: string) => `#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$REHEARSAL_GCLOUD_LOG"
exec '${real}' "$@"
`;

export async function startRehearsal(options: {
  facts: ProjectFacts;
  zones: string[];
  modules: ApiModule[];
  /** More environment for gcloud once the stand-in listens (e.g. its HTTP proxy settings). */
  extraEnv?: (standIn: StandIn) => Record<string, string>;
}): Promise<Rehearsal> {
  const { facts } = options;
  const compute = startCompute(facts, options.zones);
  const modules = [compute.module, ...options.modules];
  const standIn = await startStandIn(modules);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ilb-rehearsal-'));
  const bin = path.join(tmp, 'bin');
  const sshDir = path.join(tmp, 'ssh');
  const home = path.join(tmp, 'home');
  for (const d of [bin, sshDir, home]) mkdirSync(d);
  const real = execFileSync('bash', ['-c', 'command -v gcloud'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(bin, 'ssh'), sshRecorder);
  writeFileSync(path.join(bin, 'gcloud'), gcloudWrapper(real));
  for (const f of ['ssh', 'gcloud']) chmodSync(path.join(bin, f), 0o755);
  const gcloudLog = path.join(tmp, 'gcloud.log');
  writeFileSync(gcloudLog, '');
  const endpoints: Record<string, string> = {};
  for (const m of options.modules) endpoints[m.name] = standIn.endpoint(m.name);
  // Compute's base path carries its version (https://compute.googleapis.com/compute/v1/).
  endpoints.compute = `${standIn.endpoint('compute')}v1/`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...gcloudEnvironment(path.join(tmp, 'gcloud'), facts.project, endpoints),
    ...options.extraEnv?.(standIn),
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    HOME: home,
    USER: 'rehearsal',
    REHEARSAL_SSH_DIR: sshDir,
    REHEARSAL_GCLOUD_LOG: gcloudLog,
  };

  return {
    facts,
    standIn,
    compute,
    env,
    commands: () => readFileSync(gcloudLog, 'utf8').split('\n').filter(Boolean),
    ssh: () =>
      readdirSync(sshDir)
        .sort()
        .map((d) => ({
          args: readFileSync(path.join(sshDir, d, 'argv'), 'utf8')
            .split('\0')
            .slice(0, -1),
          stdin: readFileSync(path.join(sshDir, d, 'stdin'), 'utf8'),
        })),
    script: (name, args, input = '') =>
      new Promise((resolve, reject) => {
        const child = spawn('bash', [path.join(root, 'infra-scripts', name), ...args], { env });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? 1, out }));
        child.stdin.end(input);
      }),
    inventory: () => modules.flatMap((m) => m.inventory().map((i) => ({ api: m.name, ...i }))),
    async stop() {
      await standIn.stop();
      await compute.stop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

const mutatingMethods = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);
// Methods that read although they are POSTs (Compute's operations.wait, listManagedInstances).
const readingPosts =
  /\/(wait|listManagedInstances|getIamPolicy|testIamPermissions)$|:(getIamPolicy|testIamPermissions)$/;

/** Whether a request changes something: POST/PATCH/PUT/DELETE except the POSTs that only read. */
export const mutates = (e: JournalEntry): boolean =>
  mutatingMethods.has(e.method) && !(e.method === 'POST' && readingPosts.test(e.path));

/** Requests per API, and how many of them mutated, over a slice of the journal. */
export function figures(entries: JournalEntry[]): Record<string, { requests: number; mutations: number }> {
  const out: Record<string, { requests: number; mutations: number }> = {};
  for (const e of entries) {
    const f = (out[e.api] ??= { requests: 0, mutations: 0 });
    f.requests += 1;
    if (mutates(e)) f.mutations += 1;
  }
  return out;
}
