/**
 * `deploy` / `teardown` of the system on Google Cloud with `gcloud` (behind infra-scripts/deploy.sh
 * and teardown.sh). Reads the config file and flags, builds the plan, runs it.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { promisify } from 'node:util';

import { topicFunctions } from '../../functions/catalog';
import { applyOverrides, DeployConfigError, resolveConfig } from './config';
import { deployPlan, type PlanInputs } from './plan';
import { runPlan, type Exec, type Generators } from './runner';
import { teardownPlan } from './teardown';
import { runVerify, verifyChecks, type VerifyIo } from './verify';

const usage = `usage: deploy.sh|teardown.sh [--config FILE] [--project ID] [--region R] [--zones a,b,c]
         [--deployment NAME] [--functions a,b] [--set key.path=value ...] [--dry-run] [--yes]
         deploy.sh [options] --verify
  --config FILE   JSON config (infra-scripts/deploy/config.example.json documents every key)
  --set k=v       override one key, e.g. --set backend.max=8 --set consul.machineType=e2-medium
  --dry-run       print every command in order and run nothing
  --yes           teardown without asking
  --verify        deploy nothing: check the deployment (groups RUNNING and HEALTHY, Consul servers,
                  the frontend answers, a dry-run sweep report) and exit non-zero naming what failed`;

interface Args {
  action: 'deploy' | 'teardown';
  config?: string;
  overrides: Record<string, string>;
  sets: string[];
  dryRun: boolean;
  yes: boolean;
  verify: boolean;
}

export function parseArgs(argv: string[]): Args {
  const [action, ...rest] = argv;
  if (action !== 'deploy' && action !== 'teardown') throw new DeployConfigError(usage);
  const args: Args = { action, overrides: {}, sets: [], dryRun: false, yes: false, verify: false };
  const direct = ['project', 'region', 'zones', 'deployment', 'functions'];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i] as string;
    const [flag, inline] = token.includes('=')
      ? [token.slice(0, token.indexOf('=')), token.slice(token.indexOf('=') + 1)]
      : [token, undefined];
    const value = () => {
      const v = inline ?? rest[++i];
      if (v === undefined) throw new DeployConfigError(`${flag} needs a value\n${usage}`);
      return v;
    };
    if (flag === '--dry-run') args.dryRun = true;
    else if (flag === '--yes') args.yes = true;
    else if (flag === '--verify' && action === 'deploy') args.verify = true;
    else if (flag === '--config') args.config = value();
    else if (flag === '--set') args.sets.push(value());
    else if (flag.startsWith('--') && direct.includes(flag.slice(2))) args.overrides[flag.slice(2)] = value();
    else if (flag === '--help' || flag === '-h') throw new DeployConfigError(usage);
    else throw new DeployConfigError(`unknown argument ${token}\n${usage}`);
  }
  return args;
}

function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && /"name":\s*"gce-ilb-orchestrator"/.test(readFileSync(pkg, 'utf8'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root');
    dir = up;
  }
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((e) => {
      const full = path.join(dir, e);
      return statSync(full).isDirectory() ? files(full) : [full];
    });
}

/** What the plan needs from the repository: policies, the functions' source hash. */
export function readInputs(root: string): PlanInputs {
  const agentPolicies: Record<string, string> = {};
  for (const f of files(path.join(root, 'packer/consul/files/acl')).filter((f) => f.endsWith('.hcl'))) {
    agentPolicies[path.basename(f, '.hcl')] = readFileSync(f, 'utf8');
  }
  const functionPolicies: PlanInputs['functionPolicies'] = {};
  for (const [fn, spec] of Object.entries(topicFunctions)) {
    const file = path.join(root, 'infra-scripts/acl', spec.consulPolicy);
    if (existsSync(file)) functionPolicies[fn as keyof typeof topicFunctions] = readFileSync(file, 'utf8');
  }
  const forceLeaveFile = path.join(root, 'infra-scripts/acl/force-leave.hcl');
  const forceLeavePolicy = existsSync(forceLeaveFile) ? readFileSync(forceLeaveFile, 'utf8') : undefined;
  const hash = createHash('sha256');
  const sources = [
    path.join(root, 'package.json'),
    path.join(root, 'package-lock.json'),
    ...files(path.join(root, 'functions')),
    ...files(path.join(root, 'shared')),
  ];
  for (const f of sources) {
    hash.update(path.relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return {
    sourceHash: hash.digest('hex'),
    agentPolicies,
    functionPolicies,
    ...(forceLeavePolicy !== undefined ? { forceLeavePolicy } : {}),
  };
}

const run = promisify(execFile);

/** Secret material: random bytes from Node, the CA and server certificate from openssl. */
export const generators: Generators = {
  gossipKey: () => randomBytes(32).toString('base64'),
  uuid: () => randomUUID(),
  async tls({ dnsNames, ips }) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ilb-tls-'));
    try {
      const p = (f: string) => path.join(dir, f);
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      await run('openssl', [
        'req',
        '-x509',
        ...ec,
        '-days',
        '3650',
        '-subj',
        '/CN=gce-ilb-orchestrator Consul CA',
        '-keyout',
        p('ca.key'),
        '-out',
        p('ca.pem'),
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      await run('openssl', [
        'req',
        ...ec,
        '-subj',
        `/CN=${dnsNames[0] ?? 'server'}`,
        '-keyout',
        p('server.key'),
        '-out',
        p('server.csr'),
      ]);
      const san = [...dnsNames.map((d) => `DNS:${d}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
      writeFileSync(
        p('ext.cnf'),
        `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`,
      );
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        p('server.csr'),
        '-CA',
        p('ca.pem'),
        '-CAkey',
        p('ca.key'),
        '-CAcreateserial',
        '-days',
        '825',
        '-out',
        p('server.pem'),
        '-extfile',
        p('ext.cnf'),
      ]);
      const read = (f: string) => readFileSync(p(f), 'utf8');
      return {
        'ca-cert': read('ca.pem'),
        'ca-key': read('ca.key'),
        'server-cert': read('server.pem'),
        'server-key': read('server.key'),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** `gcloud` as a child process; stdin only when the command reads it. */
export const gcloudExec =
  (bin: string, env: NodeJS.ProcessEnv = process.env): Exec =>
  (args, stdin) =>
    new Promise((resolve, reject) => {
      const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin ?? '');
    });

/** gcloud as a child process; HTTP with a 10 s bound. */
const verifyIo = (bin: string): VerifyIo => ({
  gcloud: (args) => gcloudExec(bin)(args),
  async http(url, headers = {}) {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: await res.text() };
  },
});

async function confirm(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const root = repoRoot();
  const inputs = readInputs(root);
  let config;
  try {
    const file = args.config ? (JSON.parse(readFileSync(args.config, 'utf8')) as unknown) : {};
    // A scalingRules path is relative to the config file (to the working directory without one).
    const base = args.config ? path.dirname(args.config) : process.cwd();
    config = resolveConfig(applyOverrides(file, args.overrides, args.sets), (f) =>
      readFileSync(path.resolve(base, f), 'utf8'),
    );
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (args.verify) {
    const result = await runVerify(verifyChecks(config), verifyIo(process.env.GCLOUD ?? 'gcloud'), log);
    return result.ok ? 0 : 1;
  }
  const plan = args.action === 'deploy' ? deployPlan(config, inputs) : teardownPlan(config, inputs);
  log(
    `${args.action} ${config.deployment} to project ${config.project} (${config.region}: ${config.zones.join(', ')}); ` +
      `functions: ${config.functions.join(', ') || 'none'}`,
  );
  if (args.action === 'teardown' && !args.dryRun && !args.yes) {
    if (!process.stdin.isTTY) {
      process.stderr.write('teardown deletes the deployment: pass --yes, or run it from a terminal\n');
      return 2;
    }
    const answer = await confirm(
      `Delete everything deployment "${config.deployment}" created in ${config.project}? Type its name to confirm: `,
    );
    if (answer !== config.deployment) {
      process.stderr.write('not confirmed: nothing deleted\n');
      return 1;
    }
  }
  process.chdir(root);
  const rerun = [`infra-scripts/${args.action}.sh`, ...argv.slice(1)].join(' ');
  const result = await runPlan(plan, {
    exec: gcloudExec(process.env.GCLOUD ?? 'gcloud'),
    generators,
    log,
    dryRun: args.dryRun,
    rerun,
  });
  return result.ok ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
