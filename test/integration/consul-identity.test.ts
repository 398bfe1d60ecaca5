/**
 * The login token's renewal (consul-identity.sh renew, consul-identity.service), run for real: a
 * backend VM's agent from packer/ files, logged in with its identity token (the metadata stand-in
 * signs it; Consul's jwt auth method trusts its JWKS). A renewal logs in anew, makes the new token the
 * agent's and revokes the old one; a renewal that cannot reach Consul keeps the current token and
 * retries. The intervals are the script's knobs, set short; nothing waits on a clock.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import {
  randomLoopbackPrefix,
  startConsulCluster,
  startProcess,
  toolPath,
  waitFor,
  type ConsulCluster,
  type ManagedProcess,
} from '../harness';
import { agentTokenOf, roleTokens } from './system-support';

const run = promisify(execFile);

jest.setTimeout(120_000);

const prefix = randomLoopbackPrefix();
const packer = path.resolve('packer');
const ip = `${prefix}.40`;
const node = 'backend-r1';
let cluster: ConsulCluster;
let md: MetadataServer;
let root: string;
let env: NodeJS.ProcessEnv;
let agent: ManagedProcess | undefined;

const script = () => path.join(root, 'opt/ilb/bin/consul-identity.sh');
const server = () => cluster.servers[0]!.httpAddr;

/** consul.service: the agent from the boot's config, then its ExecStartPost login (`ensure`). */
async function startAgent(): Promise<void> {
  agent = await startProcess({
    name: `consul ${node}`,
    command: toolPath('consul'),
    args: ['agent', `-config-dir=${root}/etc/consul.d`],
    env,
    stopTimeoutMs: 10_000,
    ready: async () => {
      const res = await fetch(`http://${ip}:8500/v1/status/leader`, { signal: AbortSignal.timeout(1_000) });
      return res.ok && ((await res.json()) as string) !== '';
    },
  });
  await run('bash', [script(), 'ensure'], { env });
}

/** consul-identity.service's process, with short intervals. */
const startRenewal = () =>
  startProcess({
    name: `consul-identity ${node}`,
    command: 'bash',
    args: [script(), 'renew'],
    env: { ...env, ILB_IDENTITY_RENEW_SECONDS: '1', ILB_IDENTITY_RETRY_SECONDS: '1' },
  });

/** systemd's stop with KillMode=mixed: SIGTERM to the script alone; a renewal under way finishes. */
async function stopRenewal(renewal: ManagedProcess): Promise<void> {
  process.kill(renewal.pid, 'SIGTERM');
  expect(await renewal.exited).toEqual({ code: 0, signal: null });
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

const tokenSelf = z.object({
  AccessorID: z.string(),
  NodeIdentities: z.array(z.object({ NodeName: z.string() })),
  ServiceIdentities: z.array(z.object({ ServiceName: z.string() })),
});

/** GET /v1/acl/token/self at the server with `token`: its status, and the token when it is valid. */
async function self(token: string) {
  const res = await fetch(`${server()}/v1/acl/token/self`, { headers: { 'X-Consul-Token': token } });
  const body = await res.text();
  return { status: res.status, token: res.ok ? tokenSelf.parse(JSON.parse(body)) : undefined };
}

/** The login tokens Consul holds for this node (read with the management token). */
async function tokensOfNode(): Promise<number> {
  const res = await fetch(`${server()}/v1/acl/tokens?authmethod=gce-instance-identity`, {
    headers: { 'X-Consul-Token': cluster.token },
  });
  const list = z.array(z.object({ AccessorID: z.string() })).parse(await res.json());
  let mine = 0;
  for (const { AccessorID } of list) {
    const read = await fetch(`${server()}/v1/acl/token/${AccessorID}`, {
      headers: { 'X-Consul-Token': cluster.token },
    });
    if (read.ok && tokenSelf.parse(await read.json()).NodeIdentities.some((n) => n.NodeName === node)) mine++;
  }
  return mine;
}

/** Whether the catalog (at the server, management token) holds this node's service `serviceId`. */
async function inCatalog(serviceId: string): Promise<boolean> {
  const res = await fetch(`${server()}/v1/catalog/node/${node}`, {
    headers: { 'X-Consul-Token': cluster.token },
  });
  const answer = z
    .object({ Services: z.record(z.string(), z.unknown()).nullish() })
    .nullable()
    .parse(await res.json());
  return Object.hasOwn(answer?.Services ?? {}, serviceId);
}

/**
 * The agent itself acts with its agent token when it removes a service from the catalog (Consul's
 * local state deregisters with the agent token, never the service's): a service registered and
 * then deregistered at the agent leaves the catalog only if the agent's token is valid.
 */
async function agentActsWith(token: string): Promise<void> {
  const id = `renewal-probe-${Date.now()}`;
  const at = (p: string, body?: unknown) =>
    fetch(`http://${ip}:8500${p}`, {
      method: 'PUT',
      headers: { 'X-Consul-Token': token },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  expect((await at('/v1/agent/service/register', { ID: id, Name: 'backend', Port: 9 })).status).toBe(200);
  await waitFor(`${id} in the catalog`, () => inCatalog(id));
  expect((await at(`/v1/agent/service/deregister/${id}`)).status).toBe(200);
  await waitFor(
    `${id} gone from the catalog (the agent's token deregisters it)`,
    async () => !(await inCatalog(id)),
  );
}

beforeAll(async () => {
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  const tokens = await roleTokens(cluster, md, 'renewal');
  const metadataHost = await md.addInstance({
    id: '5550040',
    name: node,
    zone: 'europe-west4-a',
    ip,
    projectId: 'renewal',
    projectNumber: '8',
    attributes: {
      'consul-servers': cluster.joinAddrs.join(' '),
      'consul-gossip-key': cluster.gossipKey,
      'consul-default-token': tokens['backend-default'],
    },
  });
  root = await mkdtemp(path.join(os.tmpdir(), 'ilb-renewal-'));
  env = {
    ...process.env,
    PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
    ILB_ROOT: root,
    GCE_METADATA_HOST: metadataHost,
    CONSUL_CLIENT_ADDR: ip,
  };
  await run('bash', [path.join(packer, 'consul/files/install-role.sh'), 'backend', packer], { env });
  await run('bash', [path.join(root, 'opt/ilb/bin/startup.sh')], { env });
  await startAgent();
});

afterAll(async () => {
  await agent?.stop();
  await md?.stop();
  await cluster?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("the login token's renewal", () => {
  it('logs in anew, gives the agent the new token and revokes the old one', async () => {
    const old = await agentTokenOf(root);
    expect((await self(old)).status).toBe(200);

    const renewal = await startRenewal();
    // A renewal ends in one of these two lines (the second: it could not revoke the old token).
    await waitFor('a renewal', async () =>
      /renewed this node's Consul token|could not revoke the previous token/.test(renewal.output()),
    );
    await stopRenewal(renewal);
    expect(renewal.output()).not.toContain('could not revoke the previous token');

    const current = await agentTokenOf(root);
    expect(current).not.toBe(old);
    // The old token is gone: Consul answers 403 "ACL not found".
    expect((await self(old)).status).toBe(403);
    const { token } = await self(current);
    expect(token?.NodeIdentities.map((n) => n.NodeName)).toEqual([node]);
    expect(token?.ServiceIdentities.map((s) => s.ServiceName)).toEqual(['backend']);
    // Every token a renewal replaced is revoked: this node holds one login token.
    expect(await tokensOfNode()).toBe(1);
    // The config the agent reloaded names the new token for its config-file services too.
    const conf = z
      .object({ acl: z.object({ tokens: z.record(z.string(), z.string()) }) })
      .parse(JSON.parse(await readFile(path.join(root, 'etc/consul.d/10-agent.json'), 'utf8')));
    expect(conf.acl.tokens.config_file_service_registration).toBe(current);
    await agentActsWith(current);
  });

  it('keeps the current token while Consul is unreachable, and retries until a login succeeds', async () => {
    const before = await agentTokenOf(root);
    await agent!.stop('SIGINT');
    const renewal = await startRenewal();
    try {
      const failed = 'renewal failed; the current token stays';
      await waitFor('two failed renewals', async () => count(renewal.output(), failed) >= 2);
      expect(await agentTokenOf(root)).toBe(before);
      // Still valid at the servers: nothing revoked it.
      expect((await self(before)).status).toBe(200);

      await startAgent();
      // `ensure` kept the stored token (it is valid); the renewal's retry replaces it.
      expect(await agentTokenOf(root)).toBe(before);
      await waitFor('a renewal once the agent is back', async () =>
        renewal.output().includes("renewed this node's Consul token"),
      );
    } finally {
      await stopRenewal(renewal);
    }
    const current = await agentTokenOf(root);
    expect(current).not.toBe(before);
    expect((await self(before)).status).toBe(403);
    expect((await self(current)).status).toBe(200);
    expect(await tokensOfNode()).toBe(1);
    await agentActsWith(current);
  });
});
