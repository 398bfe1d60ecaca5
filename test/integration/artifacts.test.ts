/**
 * CI checks of the image artifacts: `packer validate` + `packer fmt`, `shellcheck`, `consul validate`
 * on the configs the startup scripts write, and `haproxy -c` on configs consul-template renders.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

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

describe('packer templates', () => {
  it.each(roles)(
    '%s validates with Packer 1.6.6 (without the required_plugins file) and is formatted',
    async (role) => {
      const app = path.join(tmp, 'app');
      await mkdir(path.join(app, 'dist'), { recursive: true });
      await writeFile(path.join(app, 'package.json'), '{}');
      await writeFile(path.join(app, 'package-lock.json'), '{}');
      const template = path.join(packer, role, `${role}.pkr.hcl`);
      const vars = [
        '-var',
        'project_id=ci-project',
        ...(role === 'consul' ? [] : ['-var', `app_dir=${app}`]),
      ];
      await run(toolPath('packer'), ['validate', ...vars, template]);
      await run(toolPath('packer'), ['fmt', '-check', template]);
      await run(toolPath('packer'), ['fmt', '-check', path.join(packer, role, 'plugins.pkr.hcl')]);
      // A missing required variable must fail, or this check proves nothing.
      await expect(run(toolPath('packer'), ['validate', ...vars.slice(2), template])).rejects.toThrow();
    },
  );
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
          'consul-agent-token': '00000000-0000-4000-8000-00000000000a',
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
      expect(Object.keys(tokens).sort()).toEqual(
        role === 'consul' ? ['agent', 'default', 'initial_management'] : ['agent', 'default'],
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
    const register = (id: string, ip: string, zone: string) =>
      consul.agent.consul.agent.registerService({
        id,
        name: services.backend.name,
        address: ip,
        port: services.backend.port,
        tags: [zone, 'backend'],
      });
    for (let i = 1; i <= 9; i++) await register(`b${i}`, `10.0.0.${i}`, i <= 6 ? 'zone-a' : 'zone-b');
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
    expect(servers.filter((l) => / b\d+ 10\.0\.0\.[789]:8080 backup/.test(l))).toHaveLength(3);
    // 9 backends: each pool has 16 slots (steps of 8), the unused ones declared disabled.
    expect(servers.filter((l) => / z\d+ 127\.0\.0\.1:1 disabled$/.test(l))).toHaveLength(16 - 6);
    expect(servers.filter((l) => / b\d+ 127\.0\.0\.1:1 backup disabled$/.test(l))).toHaveLength(16 - 3);
    expect(cfg).toContain('retry-on conn-failure empty-response junk-response');
    expect(cfg).toContain(`bind ${prefix}.101:8080`);
  });
});
