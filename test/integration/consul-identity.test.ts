/**
 * The login token's renewal (consul-identity.sh renew, consul-identity.service), run for real: a
 * backend VM booted from packer/ files by the sandbox's instance launcher, logged in with its identity
 * token (the metadata stand-in signs it; Consul's jwt auth method trusts its JWKS). A renewal logs in
 * anew, makes the new token the agent's and revokes the old one; a renewal that cannot reach Consul
 * keeps the current token and retries; the shutdown revokes the last one. The intervals are the
 * script's knobs, set short; nothing waits on a clock.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

import { launchInstance, type LocalInstance } from '../../infra-scripts/local/instance';
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import {
  randomLoopbackPrefix,
  startConsulCluster,
  startProcess,
  waitFor,
  type ConsulCluster,
  type ManagedProcess,
} from '../harness';
import { agentTokenOf, bootAttributes, roleTokens } from './system-support';

jest.setTimeout(180_000);

const prefix = randomLoopbackPrefix();
const ip = `${prefix}.40`;
const node = 'backend-r1';
let cluster: ConsulCluster;
let md: MetadataServer;
let vm: LocalInstance;

const server = () => cluster.servers[0]!.httpAddr;
const unit = (name: string) => vm.processes.get(name)!;

/**
 * consul-identity.service's process as the launcher built it from the unit (its command, its
 * EnvironmentFile), again with the script's interval knobs set short.
 */
const startRenewal = () => {
  const { spec } = unit('consul-identity');
  return startProcess({
    ...spec,
    env: { ...spec.env, ILB_IDENTITY_RENEW_SECONDS: '1', ILB_IDENTITY_RETRY_SECONDS: '1' },
  });
};

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
  await ensureAppsBuilt();
  cluster = await startConsulCluster({ servers: 1, prefix });
  md = createMetadataServer({ port: 0 });
  const tokens = await roleTokens(cluster, md, 'renewal');
  const where = { zone: 'europe-west4-a', projectNumber: '8' };
  const metadataHost = await md.addInstance({
    id: '5550040',
    name: node,
    ip,
    projectId: 'renewal',
    ...where,
    attributes: { ...bootAttributes(cluster, tokens, 'backend', where), 'ilb-drain-seconds': '0' },
  });
  // The image's units, consul-identity.service among them (renewing every 20 min).
  vm = await launchInstance({ role: 'backend', ip, metadataHost });
  // Its stop as systemd's (KillMode=mixed) sends it: the script leaves its 20 min wait at once.
  await stopRenewal(unit('consul-identity'));
});

afterAll(async () => {
  await vm?.kill();
  await md?.stop();
  await cluster?.stop();
});

describe("the login token's renewal", () => {
  it('logs in anew, gives the agent the new token and revokes the old one', async () => {
    const old = await agentTokenOf(vm.root);
    expect((await self(old)).status).toBe(200);

    const renewal = await startRenewal();
    try {
      // A renewal ends in one of these two lines (the second: it could not revoke the old token).
      await waitFor('a renewal', async () =>
        /renewed this node's Consul token|could not revoke the previous token/.test(renewal.output()),
      );
    } finally {
      await stopRenewal(renewal);
    }
    expect(renewal.output()).not.toContain('could not revoke the previous token');

    const current = await agentTokenOf(vm.root);
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
      .parse(JSON.parse(await readFile(path.join(vm.root, 'etc/consul.d/10-agent.json'), 'utf8')));
    expect(conf.acl.tokens.config_file_service_registration).toBe(current);
    await agentActsWith(current);
  });

  it('keeps the current token while Consul is unreachable, and retries until a login succeeds', async () => {
    const before = await agentTokenOf(vm.root);
    await unit('consul').stop('SIGINT');
    const renewal = await startRenewal();
    try {
      const failed = 'renewal failed; the current token stays';
      await waitFor('two failed renewals', async () => count(renewal.output(), failed) >= 2);
      expect(await agentTokenOf(vm.root)).toBe(before);
      // Still valid at the servers: nothing revoked it.
      expect((await self(before)).status).toBe(200);

      // consul.service again, from the config that still holds the current token.
      await vm.restart('consul');
      await waitFor('a renewal once the agent is back', async () =>
        renewal.output().includes("renewed this node's Consul token"),
      );
    } finally {
      await stopRenewal(renewal);
    }
    const current = await agentTokenOf(vm.root);
    expect(current).not.toBe(before);
    expect((await self(before)).status).toBe(403);
    expect((await self(current)).status).toBe(200);
    expect(await tokensOfNode()).toBe(1);
    await agentActsWith(current);
  });

  it("its unit stops before the shutdown's logout, by a signal to the script alone", async () => {
    const text = await readFile(path.resolve('packer/consul/files/consul-identity.service'), 'utf8');
    // systemd stops in reverse start order: a unit after ilb-drain.service stops before its ExecStop.
    expect(text).toMatch(/^After=.*\bilb-drain\.service\b/m);
    expect(text).toMatch(/^KillMode=mixed$/m);
  });

  it('logs out at shutdown: ilb-drain.sh revokes the token before the agent leaves', async () => {
    const last = await agentTokenOf(vm.root);
    expect((await self(last)).status).toBe(200);
    await vm.shutdown();
    expect((await self(last)).status).toBe(403);
    expect(await tokensOfNode()).toBe(0);
  });
});
