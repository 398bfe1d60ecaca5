/**
 * CI checks of the image artifacts: `packer validate` + `packer fmt` and what the template uploads and
 * runs, `shellcheck`, `consul validate` on the configs the startup scripts write, and `haproxy -c` on
 * configs consul-template renders.
 */
import { execFile } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

import { pathMapper, roles } from '../../infra-scripts/local/instance';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { randomLoopbackPrefix, startConsulDev, toolPath, type ConsulDev } from '../harness';
import { nodeMetaKeys, services } from '../../shared/contract';

const run = promisify(execFile);
const packer = path.resolve('packer');
const prefix = randomLoopbackPrefix();
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ilb-artifacts-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function scripts(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await scripts(full)));
    else if (entry.name.endsWith('.sh')) out.push(full);
  }
  return out;
}

describe('packer template', () => {
  const template = path.join(packer, 'image.pkr.hcl');
  let app: string;
  beforeAll(async () => {
    app = path.join(tmp, 'app');
    await mkdir(path.join(app, 'dist'), { recursive: true });
    await writeFile(path.join(app, 'package.json'), '{}');
    await writeFile(path.join(app, 'package-lock.json'), '{}');
  });

  const Plan = z.object({ uploads: z.array(z.string()), install: z.array(z.string()) });
  /** What the template uploads and runs for these variables (`packer console` prints a string as is). */
  async function plan(vars: string[]): Promise<z.infer<typeof Plan>> {
    const pending = run(toolPath('packer'), ['console', ...vars, template]);
    pending.child.stdin?.end('jsonencode({ uploads = local.uploads, install = local.install })\n');
    return Plan.parse(JSON.parse((await pending).stdout));
  }

  it('and its required_plugins file are formatted', async () => {
    await run(toolPath('packer'), ['fmt', '-check', template]);
    await run(toolPath('packer'), ['fmt', '-check', path.join(packer, 'plugins.pkr.hcl')]);
  });

  it('rejects an unknown role', async () => {
    const vars = ['-var', 'role=haproxy-x', '-var', 'project_id=ci-project'];
    // Packer 1.6.6 prints its errors on stdout.
    const output = await run(toolPath('packer'), ['validate', ...vars, template]).then(
      () => null,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
    expect(output).toMatch(/role must be one of/);
  });

  const packages: Record<(typeof roles)[number], string> = {
    consul: '',
    backend: '',
    haproxy: 'haproxy',
    frontend: 'dnsmasq',
  };
  it.each(roles)(
    '%s validates with Packer 1.6.6 (without the required_plugins file); its uploads hold what it runs',
    async (role) => {
      const vars = ['-var', `role=${role}`, '-var', 'project_id=ci-project', '-var', `app_dir=${app}`];
      await run(toolPath('packer'), ['validate', ...vars, template]);
      // A missing required variable must fail, or this check proves nothing.
      await expect(run(toolPath('packer'), ['validate', ...vars.slice(0, 2), template])).rejects.toThrow();

      const { uploads, install } = await plan(vars);
      // The file provisioner puts each source, file or folder, under its own name in /tmp/ilb/.
      const staged = path.join(tmp, `upload-${role}`);
      for (const source of uploads) {
        await cp(source, path.join(staged, path.basename(source)), { recursive: true });
      }
      const commands = install.map((line) => line.replaceAll('/tmp/ilb', staged));
      expect(commands[0]).toBe('set -euo pipefail');
      expect(commands).toContain(`bash ${staged}/consul/files/install-packages.sh '${packages[role]}'`);
      expect(commands.includes(`bash ${staged}/consul/files/install-app.sh ${staged}`)).toBe(
        role !== 'consul',
      );
      expect(commands.at(-1)).toBe(`rm -rf ${staged}`);
      // Every script it runs was uploaded, and so was the app for the roles that have one.
      for (const line of commands.filter((l) => l.startsWith('bash '))) {
        await access(line.split(' ')[1] ?? '');
      }
      expect((await readdir(staged)).sort()).toEqual(
        role === 'consul' ? ['consul'] : ['consul', 'dist', 'package-lock.json', 'package.json', role].sort(),
      );

      // The role's install step, run on the staged uploads into a temp root.
      const root = path.join(tmp, `image-${role}`);
      const installRole = `bash ${staged}/consul/files/install-role.sh ${role} ${staged}`;
      expect(commands).toContain(installRole);
      await run('bash', ['-c', installRole], { env: { ...process.env, ILB_ROOT: root } });
      expect(await readFile(path.join(root, 'opt/ilb/bin/startup.sh'), 'utf8')).toBe(
        await readFile(path.join(packer, role, 'files/startup.sh'), 'utf8'),
      );
    },
  );
});

describe('infra-scripts/build-images.sh', () => {
  it('runs packer init once and, per role, a build that Packer validates as it is written', async () => {
    const { stdout } = await run('bash', [
      path.resolve('infra-scripts/build-images.sh'),
      '--project',
      'ci-project',
      '--dry-run',
    ]);
    // Packer checks that the app's dist/ exists, which the script builds first (npm test has built it).
    expect(stdout).toContain('node_modules/.bin/tsc -p tsconfig.build.json');
    await access(path.resolve('dist')).catch(() =>
      run(path.resolve('node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json']),
    );
    const lines = stdout.split('\n').filter((l) => l.startsWith('+ packer '));
    expect(lines[0]).toBe(`+ packer init ${packer}`);
    const builds = lines.slice(1).map((l) => l.slice('+ packer build '.length).split(' '));
    expect(builds).toHaveLength(roles.length);
    // Debian's Packer 1.6.6 predates required_plugins: validate a copy of packer/ without that file,
    // with the exact arguments of each build (its last one is the template folder).
    const copy = path.join(tmp, 'packer-as-built');
    await cp(packer, copy, { recursive: true });
    await rm(path.join(copy, 'plugins.pkr.hcl'));
    const built: string[] = [];
    for (const args of builds) {
      expect(args.at(-1)).toBe(packer);
      await run(toolPath('packer'), ['validate', ...args.slice(0, -1), copy]);
      built.push(args.find((a) => a.startsWith('role='))?.slice('role='.length) ?? '');
    }
    expect(built.sort()).toEqual([...roles].sort());
  });
});

describe('scripts', () => {
  it('pass shellcheck', async () => {
    const files = await scripts(packer);
    expect(files.length).toBeGreaterThanOrEqual(10);
    await run(toolPath('shellcheck'), ['--severity=style', ...files]);
  });
});

describe('Consul agent configs written at boot', () => {
  let md: MetadataServer;
  let caPem: string;
  let serverCert: string;
  let serverKey: string;
  beforeAll(async () => {
    md = createMetadataServer({ port: 0 });
    await run(toolPath('consul'), ['tls', 'ca', 'create'], { cwd: tmp });
    await run(toolPath('consul'), ['tls', 'cert', 'create', '-server', '-dc', 'dc1'], { cwd: tmp });
    caPem = await readFile(path.join(tmp, 'consul-agent-ca.pem'), 'utf8');
    serverCert = await readFile(path.join(tmp, 'dc1-server-consul-0.pem'), 'utf8');
    serverKey = await readFile(path.join(tmp, 'dc1-server-consul-0-key.pem'), 'utf8');
  });
  afterAll(() => md.stop());

  const cases = roles.flatMap((role, i) => [
    { role, tls: false, host: 10 + 2 * i },
    { role, tls: true, host: 11 + 2 * i },
  ]);
  it.each(cases)(
    '$role (TLS: $tls) passes consul validate with the node identity',
    async ({ role, tls, host }) => {
      const ip = `${prefix}.${host}`;
      const root = path.join(tmp, `root-${role}-${tls}`);
      const metadataHost = await md.addInstance({
        id: '7302918245577123456',
        name: `${role}-x7`,
        zone: 'europe-west1-b',
        ip,
        projectId: 'ci-project',
        projectNumber: '99',
        attributes: {
          // Both spellings: the tutorial's underscore on the TLS cases.
          [tls ? 'consul_servers' : 'consul-servers']: `${prefix}.1 ${prefix}.2`,
          'consul-gossip-key': 'H2KsGsrh3rvRzgeLHqSXIGjZKB8cDlStvMdpGvNlb0c=',
          // Only servers read an agent token; a client VM's comes from its identity login.
          ...(role === 'consul' ? { 'consul-agent-token': '00000000-0000-4000-8000-00000000000a' } : {}),
          ...(tls ? { 'consul-ca-cert': caPem } : {}),
          ...(tls && role === 'consul'
            ? { 'consul-server-cert': serverCert, 'consul-server-key': serverKey }
            : {}),
          ...(role === 'consul'
            ? { 'consul-initial-management-token': '00000000-0000-4000-8000-0000000000ff' }
            : {}),
        },
      });
      const env = { ...process.env, ILB_ROOT: root, GCE_METADATA_HOST: metadataHost, CONSUL_CLIENT_ADDR: ip };
      await run('bash', [path.join(packer, 'consul/files/install-role.sh'), role, packer], { env });
      await run('bash', [path.join(root, 'opt/ilb/bin/startup.sh')], { env });
      const confDir = path.join(root, 'etc/consul.d');
      const { stdout } = await run(toolPath('consul'), ['validate', confDir]);
      expect(stdout).toContain('Configuration is valid');
      const agent = JSON.parse(await readFile(path.join(confDir, '10-agent.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(agent).toMatchObject({
        node_name: `${role}-x7`,
        node_meta: {
          [nodeMetaKeys.instanceId]: '7302918245577123456',
          [nodeMetaKeys.zone]: 'europe-west1-b',
          [nodeMetaKeys.project]: 'ci-project',
          [nodeMetaKeys.group]: '',
          [nodeMetaKeys.role]: role,
        },
        acl: { enabled: true, default_policy: 'deny' },
        retry_join: [`${prefix}.1`, `${prefix}.2`],
        ...(role === 'consul' ? { server: true, bootstrap_expect: 3 } : {}),
        ...(tls && role === 'consul'
          ? {
              tls: { defaults: { verify_incoming: true, verify_outgoing: true } },
              auto_encrypt: { allow_tls: true },
            }
          : {}),
        ...(tls && role !== 'consul'
          ? { tls: { defaults: { verify_outgoing: true } }, auto_encrypt: { tls: true } }
          : {}),
      });
      const tokens = (agent.acl as { tokens: Record<string, string> }).tokens;
      // No consul-default-token given: no default token. A client holds no agent token until its
      // login, only its agent's own random recovery token (valid at that agent alone).
      expect(Object.keys(tokens).sort()).toEqual(
        role === 'consul' ? ['agent', 'initial_management'] : ['agent_recovery'],
      );
      if (role !== 'consul') {
        const service = JSON.parse(await readFile(path.join(confDir, '20-service.json'), 'utf8')) as {
          service: { tags: string[]; check: { http: string } };
        };
        expect(service.service.tags).toEqual(['europe-west1-b', role]);
        expect(service.service.check.http).toMatch(
          new RegExp(`^http://${ip.replace(/\./g, '\\.')}:\\d+/healthz$`),
        );
      }
      md.setAttributes(ip, { 'consul-default-token': '00000000-0000-4000-8000-00000000000d' });
      await run('bash', [path.join(root, 'opt/ilb/bin/startup.sh')], { env });
      const again = JSON.parse(await readFile(path.join(confDir, '10-agent.json'), 'utf8')) as {
        acl: { tokens: Record<string, string> };
      };
      expect(again.acl.tokens.default).toBe('00000000-0000-4000-8000-00000000000d');
      // Without the secrets the boot must fail rather than start an open agent.
      md.setAttributes(ip, { 'consul-gossip-key': null });
      await expect(run('bash', [path.join(root, 'opt/ilb/bin/startup.sh')], { env })).rejects.toThrow();
    },
  );
});

describe('HAProxy config rendered by consul-template', () => {
  let consul: ConsulDev;
  beforeAll(async () => {
    consul = await startConsulDev({ ip: `${prefix}.100` });
    // What the template accepts: a node with its instance id, a passing serfHealth, its service at the
    // node's own address and the tier's port (as an agent registers it; here through the catalog).
    const register = async (id: string, ip: string, zone: string, node = `backend-${id}`) => {
      const res = await fetch(`${consul.httpAddr}/v1/catalog/register`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': consul.token },
        body: JSON.stringify({
          Node: node,
          Address: ip,
          NodeMeta: { [nodeMetaKeys.instanceId]: `73029182455771234${node.slice(9).padStart(2, '0')}` },
          Service: {
            ID: id,
            Service: services.backend.name,
            Address: ip,
            Port: services.backend.port,
            Tags: [zone, 'backend'],
          },
          Checks: [{ CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing' }],
        }),
      });
      expect(res.status).toBe(200);
    };
    for (let i = 1; i <= 9; i++) await register(`b${i}`, `10.0.0.${i}`, i <= 6 ? 'zone-a' : 'zone-b');
    // What a node's own token may add: more instances of its service, each valid on its own.
    for (const dup of ['b1-dup1', 'b1-dup2']) await register(dup, '10.0.0.1', 'zone-a', 'backend-b1');
  });
  afterAll(() => consul?.stop());

  it('passes haproxy -c, zone-local servers first, others as backup, in slots', async () => {
    const root = path.join(tmp, 'root-render');
    await run('bash', [path.join(packer, 'consul/files/install-role.sh'), 'haproxy', packer], {
      env: { ...process.env, ILB_ROOT: root },
    });
    const map = pathMapper(root);
    const hcl = path.join(root, 'etc/consul-template/consul-template.hcl');
    const ctmpl = path.join(root, 'etc/consul-template/haproxy.cfg.ctmpl');
    await writeFile(hcl, map(await readFile(hcl, 'utf8')));
    await writeFile(ctmpl, map(await readFile(ctmpl, 'utf8')));
    await mkdir(path.join(root, 'etc/haproxy'), { recursive: true });
    await mkdir(path.join(root, 'run/haproxy'), { recursive: true });
    const env = {
      ...process.env,
      CONSUL_HTTP_ADDR: consul.httpAddr,
      CONSUL_HTTP_TOKEN: consul.token,
      ILB_ZONE: 'zone-a',
      ILB_BIND_ADDR: `${prefix}.101`,
      ILB_NODE_NAME: 'haproxy-r1',
    };
    // The shipped consul-template config, once; its haproxy-sync command finds no running HAProxy.
    await run(toolPath('consul-template'), [`-config=${hcl}`, '-once'], { env, timeout: 60_000 });
    const cfgPath = path.join(root, 'etc/haproxy/haproxy.cfg');
    const cfg = await readFile(cfgPath, 'utf8');
    await run(toolPath('haproxy'), ['-c', '-f', cfgPath]);
    const servers = cfg.split('\n').filter((l) => /^\s+server /.test(l));
    expect(servers.filter((l) => / z\d+ 10\.0\.0\.\d:8080/.test(l))).toHaveLength(6);
    // One server per node: the node's first registration (by service ID); the others are comments.
    expect(servers.filter((l) => /node=backend-b1 /.test(l))).toEqual([
      expect.stringMatching(/ z\d+ 10\.0\.0\.1:8080 # node=backend-b1 /),
    ]);
    expect(cfg.match(/# skipped: duplicate-node node="backend-b1" address="10\.0\.0\.1"/g)).toHaveLength(2);
    expect(servers.filter((l) => / b\d+ 10\.0\.0\.[789]:8080 backup/.test(l))).toHaveLength(3);
    // 9 backends: each pool has 16 slots (steps of 8), the unused ones declared disabled.
    expect(servers.filter((l) => / z\d+ 127\.0\.0\.1:1 disabled$/.test(l))).toHaveLength(16 - 6);
    expect(servers.filter((l) => / b\d+ 127\.0\.0\.1:1 backup disabled$/.test(l))).toHaveLength(16 - 3);
    expect(cfg).toContain('retry-on conn-failure empty-response junk-response');
    expect(cfg).toContain(`bind ${prefix}.101:8080`);
    // Stats on loopback only (ILB_LOCAL_ADDR unset: the image's 127.0.0.1), never the VPC address.
    expect(cfg).toMatch(/^listen stats\n {4}bind 127\.0\.0\.1:8404$/m);
    expect(cfg).toContain('monitor fail if { nbsrv(backends) lt 1 }');
  });
});
