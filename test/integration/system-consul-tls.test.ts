/**
 * The Consul tier from packer/consul alone: 3 servers (bootstrap_expect, retry_join, gossip key,
 * TLS with verify_incoming, ACL default deny, all from instance metadata), the per-role tokens made
 * by acl-setup.sh, and a backend instance whose agent gets its certificate through auto_encrypt.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

import { CONSUL_HTTP_PORT } from '../../infra-scripts/local/launch';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { launchInstance, type LocalInstance, type Role } from '../../infra-scripts/local/instance';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { loadConfig } from '../../shared/config';
import { createConsulClient, PermanentError } from '../../shared/consul';
import { services } from '../../shared/contract';
import { randomLoopbackPrefix, toolPath, waitFor } from '../harness';

jest.setTimeout(180_000);
const run = promisify(execFile);

const prefix = randomLoopbackPrefix();
const serverIps = [1, 2, 3].map((n) => `${prefix}.${n}`);
const management = randomUUID();
const gossipKey = randomBytes(32).toString('base64');
let md: MetadataServer;
let tmp: string;
let tls: Record<string, string>;
let otherCaDir: string;
const caPath = () => path.join(tmp, 'consul-agent-ca.pem');
const instances: LocalInstance[] = [];

async function boot(role: Role, name: string, ip: string, attributes: Record<string, string>) {
  const metadataHost = await md.addInstance({
    id: String(Date.now()) + String(instances.length),
    name,
    zone: 'us-central1-c',
    ip,
    projectId: 'tls-project',
    projectNumber: '7',
    attributes: {
      'consul-servers': serverIps.join(' '),
      'consul-gossip-key': gossipKey,
      'consul-ca-cert': tls.ca!,
      'ilb-drain-seconds': '1',
      ...attributes,
    },
  });
  const instance = await launchInstance({ role, ip, metadataHost });
  instances.push(instance);
  return instance;
}

/** An agent's HTTP API through the project's Consul layer (one attempt: the tests poll). */
const consul = (ip: string, token: string = management) =>
  createConsulClient({
    baseUrl: `http://${ip}:${CONSUL_HTTP_PORT}`,
    token,
    timeoutMs: 5_000,
    retries: 0,
    keepAlive: false,
  });
const raftPeers = async () =>
  (
    await consul(serverIps[0]!)
      .status.peers()
      .catch(() => [])
  ).length;

beforeAll(async () => {
  await ensureAppsBuilt();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ilb-tls-'));
  otherCaDir = await mkdtemp(path.join(os.tmpdir(), 'ilb-tls-other-'));
  await run(toolPath('consul'), ['tls', 'ca', 'create'], { cwd: tmp });
  await run(toolPath('consul'), ['tls', 'cert', 'create', '-server', '-dc', 'dc1'], { cwd: tmp });
  tls = {
    ca: await readFile(path.join(tmp, 'consul-agent-ca.pem'), 'utf8'),
    cert: await readFile(path.join(tmp, 'dc1-server-consul-0.pem'), 'utf8'),
    key: await readFile(path.join(tmp, 'dc1-server-consul-0-key.pem'), 'utf8'),
  };
  md = createMetadataServer({ port: 0 });
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.kill().catch(() => undefined)));
  await md?.stop();
  await rm(tmp, { recursive: true, force: true });
  await rm(otherCaDir, { recursive: true, force: true });
});

describe('Consul servers from the packer/consul image files', () => {
  it('form a TLS, gossip-encrypted, ACL default-deny cluster from metadata alone', async () => {
    await Promise.all(
      serverIps.map((ip, i) =>
        boot('consul', `consul-s${i + 1}`, ip, {
          'consul-agent-token': management,
          'consul-initial-management-token': management,
          'consul-server-cert': tls.cert!,
          'consul-server-key': tls.key!,
          'consul-bootstrap-expect': '3',
        }),
      ),
    );
    await waitFor('three raft peers', async () => (await raftPeers()) === 3);
    // An unknown token is refused.
    await expect(consul(serverIps[0]!, randomUUID()).catalog.nodes()).rejects.toMatchObject({ status: 403 });
  });

  it("serve the HTTPS API on the servers' private address, as the functions reach it", async () => {
    // What the deployed functions are given: an https:// server address, the CA, the server name.
    const functionsView = (caFile: string) =>
      createConsulClient({
        ...loadConfig({
          CONSUL_HTTP_ADDR: `https://${serverIps[0]!}:8501`,
          CONSUL_CACERT: caFile,
          CONSUL_TLS_SERVER_NAME: 'server.dc1.consul',
          CONSUL_HTTP_TOKEN: management,
        }).consul,
        retries: 0,
      });
    await waitFor(
      'HTTPS leader',
      async () =>
        (await functionsView(caPath())
          .status.leader()
          .catch(() => '')) !== '',
    );
    expect(await functionsView(caPath()).catalog.nodes()).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'consul-s1' })]),
    );
    // Another CA is not trusted: the function would never send its token there.
    await run(toolPath('consul'), ['tls', 'ca', 'create', '-domain', 'other'], { cwd: otherCaDir });
    await expect(
      functionsView(path.join(otherCaDir, 'other-agent-ca.pem')).status.leader(),
    ).rejects.toBeInstanceOf(PermanentError);
  });

  it('give the servers a token and client VMs an identity login through acl-setup.sh', async () => {
    const { stdout } = await run('bash', ['packer/consul/files/acl-setup.sh'], {
      env: {
        ...process.env,
        PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
        CONSUL_HTTP_ADDR: `${serverIps[0]}:8500`,
        CONSUL_HTTP_TOKEN: management,
        ILB_IDENTITY_PROJECT: 'tls-project',
        ILB_IDENTITY_JWKS_URL: await md.identityJwksUrl(),
      },
    });
    const tokens = z.record(z.string(), z.guid()).parse(JSON.parse(stdout));
    expect(Object.keys(tokens).sort()).toEqual([
      'backend-default',
      'consul',
      'consul-default',
      'frontend-default',
      'haproxy-default',
    ]);
    // Run twice: the same tokens come back.
    const again = await run('bash', ['packer/consul/files/acl-setup.sh'], {
      env: {
        ...process.env,
        PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
        CONSUL_HTTP_ADDR: `${serverIps[0]}:8500`,
        CONSUL_HTTP_TOKEN: management,
        ILB_IDENTITY_PROJECT: 'tls-project',
        ILB_IDENTITY_JWKS_URL: await md.identityJwksUrl(),
      },
    });
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(stdout));
  });

  it('register a backend whose agent gets its TLS certificate by auto_encrypt', async () => {
    const backend = await boot('backend', 'backend-t1', `${prefix}.20`, {});
    await waitFor('backend-t1 passing', async () => {
      const entries = await consul(serverIps[0]!)
        .health.service(services.backend.name, { passing: true })
        .catch(() => []);
      return entries.some((e) => e.Node.Node === 'backend-t1');
    });
    const self = z
      .object({
        AutoEncryptTLS: z.boolean(),
        TLS: z.object({ InternalRPC: z.object({ VerifyServerHostname: z.boolean() }) }),
      })
      .parse((await consul(backend.ip).agent.self()).debugConfig);
    expect(self.AutoEncryptTLS).toBe(true);
    expect(self.TLS.InternalRPC.VerifyServerHostname).toBe(true);
    // Requests without a token get the anonymous token's rights (no default token given, and never
    // the role's write token): no KV, no service registration.
    const anonymous = consul(backend.ip, '');
    const denied = { status: 403, transient: false };
    await expect(anonymous.kv.get('anything')).rejects.toBeInstanceOf(PermanentError);
    await expect(anonymous.kv.get('anything')).rejects.toMatchObject(denied);
    await expect(
      anonymous.agent.registerService({ name: services.frontend.name, port: services.frontend.port }),
    ).rejects.toMatchObject(denied);
  });

  it('keep quorum when a server leaves through its shutdown script', async () => {
    await instances.find((i) => i.ip === serverIps[2])!.shutdown();
    await waitFor('two raft peers', async () => (await raftPeers()) === 2);
    expect((await consul(serverIps[0]!).status.leader()).length).toBeGreaterThan(0);
  });
});
