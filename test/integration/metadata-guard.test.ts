/**
 * The images' metadata guard, run for real: the repository's nftables file, loaded unchanged with
 * `nft -f` in a private network namespace that holds the metadata server's addresses, and a private
 * mount namespace whose /etc/passwd and /etc/group name `consul` and `ilb` as the image does (nft
 * resolves the names when it loads the file). Each client runs as one user (setpriv) and connects.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ruleFile = path.resolve('packer/consul/files/metadata-guard.nft');
const v4 = '169.254.169.254';
const v6 = 'fd20:ce::254';

// HTTP on :80 and :443 (any TCP port but DNS is the API), DNS echoes on udp and tcp :53.
const listener = `
const http = require('node:http'), net = require('node:net'), dgram = require('node:dgram');
let pending = 0;
const up = () => { if (--pending === 0) process.stdout.write('ready\\n'); };
for (const host of ['${v4}', '${v6}']) {
  for (const port of [80, 443]) {
    pending++;
    http.createServer((_q, s) => s.end('metadata')).listen(port, host, up);
  }
  pending++;
  net.createServer((c) => c.end('dns')).listen(53, host, up);
  pending++;
  const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(53, host, up);
}`;

// Prints what one connection got: "ok" or the error code (ECONNREFUSED for the guard's reset).
const client = `
const [proto, host, port] = process.argv.slice(1);
const done = (r) => { process.stdout.write(r); process.exit(0); };
setTimeout(() => done('timeout'), 5000);
if (proto === 'udp') {
  const u = require('node:dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
  u.on('message', () => done('ok'));
  u.on('error', (e) => done(e.code));
  u.send('q', Number(port), host);
} else {
  const s = require('node:net').connect(Number(port), host);
  s.on('data', () => done('ok'));
  s.on('error', (e) => done(e.code));
  if (port !== '53') s.write('GET / HTTP/1.1\\r\\nHost: metadata\\r\\n\\r\\n');
}`;

const users = [
  'root:x:0:0:root:/root:/bin/bash',
  'consul:x:998:998::/opt/consul:/usr/sbin/nologin',
  'ilb:x:997:997::/opt/ilb:/usr/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
];
const groups = ['root:x:0:', 'consul:x:998:', 'ilb:x:997:', 'nogroup:x:65534:'];

let dir = '';
let holder: ChildProcess | undefined;
let pid = 0;

// nft and ip live in /usr/sbin, which a non-root PATH may lack.
const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

const inNamespaces = (cmd: string[]) =>
  run('nsenter', ['-t', String(pid), '-n', '-m', '--', ...cmd], { cwd: '/', env });

const load = () => inNamespaces(['nft', '-f', ruleFile]);

/** One connection as `user` (a name from the namespace's /etc/passwd or a bare uid). */
async function reach(user: string, proto: 'tcp' | 'udp', host: string, port: number): Promise<string> {
  // A bare uid runs with the same number as its gid; a named user with its own group.
  const group = user === 'nobody' ? 'nogroup' : user;
  const as =
    user === 'root' ? [] : ['setpriv', `--reuid=${user}`, `--regid=${group}`, '--clear-groups', '--'];
  const { stdout } = await inNamespaces([...as, process.execPath, '-e', client, proto, host, String(port)]);
  return stdout;
}

beforeAll(async () => {
  for (const tool of ['nft', 'unshare', 'nsenter', 'setpriv']) {
    await run('bash', ['-c', `command -v ${tool}`], { env }).catch(() => {
      throw new Error(`${tool} is not installed: run \`npm run tools\` (nftables, util-linux)`);
    });
  }
  dir = await mkdtemp(path.join(tmpdir(), 'metadata-guard-'));
  await writeFile(path.join(dir, 'passwd'), `${users.join('\n')}\n`);
  await writeFile(path.join(dir, 'group'), `${groups.join('\n')}\n`);
  const setup = [
    'set -euo pipefail',
    `mount --bind ${dir}/passwd /etc/passwd`,
    `mount --bind ${dir}/group /etc/group`,
    'ip link set lo up',
    `ip addr add ${v4}/32 dev lo`,
    `ip -6 addr add ${v6}/128 dev lo nodad`,
    `exec ${process.execPath} -e "$1"`,
  ].join('\n');
  // unshare(1) without --fork execs bash in the new namespaces: its pid is the one to enter.
  holder = spawn(
    'unshare',
    ['--net', '--mount', '--propagation', 'private', '--', 'bash', '-c', setup, 'guard', listener],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    },
  );
  let stderr = '';
  holder.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    holder!.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    holder!.on('exit', (code) =>
      reject(
        new Error(
          `could not set up private network and mount namespaces (unshare exited ${code}): ${stderr.trim()}; ` +
            'this test needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and namespace support',
        ),
      ),
    );
  });
  pid = holder.pid!;
  await load();
});

afterAll(async () => {
  holder?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the images' metadata guard (nftables, loaded for real)", () => {
  it.each(['root', 'consul', 'ilb'])('lets %s reach the metadata HTTP API (IPv4 and IPv6)', async (user) => {
    expect(await reach(user, 'tcp', v4, 80)).toBe('ok');
    expect(await reach(user, 'tcp', v6, 80)).toBe('ok');
    expect(await reach(user, 'tcp', v4, 443)).toBe('ok');
  });

  it.each(['nobody', '4242'])(
    'resets user %s on every TCP port of the metadata server, on both addresses',
    async (user) => {
      expect(await reach(user, 'tcp', v4, 80)).toBe('ECONNREFUSED');
      expect(await reach(user, 'tcp', v6, 80)).toBe('ECONNREFUSED');
      expect(await reach(user, 'tcp', v4, 443)).toBe('ECONNREFUSED');
      expect(await reach(user, 'tcp', v6, 443)).toBe('ECONNREFUSED');
    },
  );

  it.each(['nobody', '4242'])('leaves DNS (udp and tcp 53) open to user %s', async (user) => {
    for (const host of [v4, v6]) {
      expect(await reach(user, 'udp', host, 53)).toBe('ok');
      expect(await reach(user, 'tcp', host, 53)).toBe('ok');
    }
  });

  it('loads again over itself: one table, the same rules, still enforced', async () => {
    const before = (await inNamespaces(['nft', 'list', 'ruleset'])).stdout;
    await load();
    await load();
    const after = (await inNamespaces(['nft', 'list', 'ruleset'])).stdout;
    expect(after.match(/table inet ilb_metadata_guard/g)).toHaveLength(1);
    expect(after.match(/reject with tcp reset/g)).toHaveLength(2);
    // Counters differ by the traffic since; the rules do not.
    const rules = (s: string) => s.replace(/counter packets \d+ bytes \d+/g, 'counter');
    expect(rules(after)).toBe(rules(before));
    expect(await reach('nobody', 'tcp', v4, 80)).toBe('ECONNREFUSED');
    expect(await reach('consul', 'tcp', v4, 80)).toBe('ok');
  });
});
