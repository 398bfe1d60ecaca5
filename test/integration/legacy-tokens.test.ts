/**
 * Retiring the role write tokens of the version before per-instance identity, against a real Consul
 * with ACLs (default deny): the tokens and policies are made as that version's acl-setup.sh made
 * them, then the deploy's script (steps/legacy.ts, run on a server) and the operator's acl-setup.sh
 * remove them. A stolen legacy token is refused afterwards; the servers' and the default tokens
 * still work; a second run changes nothing; acl-setup.sh keeps them while an old agent still runs
 * (one without its own identity login) and retires them when every agent has one.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

import { retireLines } from '../../infra-scripts/deploy/steps/legacy';
import { createMetadataServer } from '../../infra-scripts/local/metadata-server';
import { envWithoutConsulToken } from '../../infra-scripts/local/scenarios/acl';
import { type ConsulCluster, repoRoot, startConsulCluster, toolPath, waitFor } from '../harness';

jest.setTimeout(120_000);
const run = promisify(execFile);

/** The policies of the three client roles as the previous version shipped them (acl/<role>.hcl). */
const oldRules: Record<string, string> = {
  backend:
    'node_prefix "backend-" { policy = "write" }\nagent_prefix "backend-" { policy = "write" }\nservice "backend" { policy = "write" }\n',
  haproxy:
    'node_prefix "haproxy-" { policy = "write" }\nagent_prefix "haproxy-" { policy = "write" }\nservice "haproxy-internal" { policy = "write" }\nservice "backend" { policy = "read" }\nnode_prefix "" { policy = "read" }\n',
  frontend:
    'node_prefix "frontend-" { policy = "write" }\nagent_prefix "frontend-" { policy = "write" }\nservice "frontend" { policy = "write" }\nservice "haproxy-internal" { policy = "read" }\nnode_prefix "" { policy = "read" }\n',
};

const tokenList = z.array(z.object({ AccessorID: z.string(), Description: z.string() }));
const policyList = z.array(z.object({ ID: z.string(), Name: z.string() }));

let cluster: ConsulCluster;
let tmp: string;
let current: Record<string, string>;

const env = () => ({
  ...envWithoutConsulToken(),
  PATH: `${path.dirname(toolPath('consul'))}:${process.env.PATH ?? ''}`,
  CONSUL_HTTP_ADDR: cluster.servers[0]!.httpAddr,
  CONSUL_HTTP_TOKEN: cluster.token,
});
const bash = (script: string) => run('bash', ['-c', script], { env: env() });
const aclSetup = (extra: Record<string, string> = {}) =>
  run('bash', [path.join(repoRoot(), 'packer/consul/files/acl-setup.sh')], { env: { ...env(), ...extra } });
/** The deploy's script as the ssh step runs it, without the head that reads the token on GCE. */
const deployRetire = () => bash(['set -euo pipefail', ...retireLines()].join('\n'));

async function api(method: string, route: string, token: string, body?: unknown) {
  const res = await fetch(`${cluster.servers[0]!.httpAddr}${route}`, {
    method,
    headers: { 'X-Consul-Token': token },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, text: await res.text() };
}
const acl = async () => ({
  tokens: tokenList.parse(JSON.parse((await api('GET', '/v1/acl/tokens', cluster.token)).text)),
  policies: policyList.parse(JSON.parse((await api('GET', '/v1/acl/policies', cluster.token)).text)),
});
const legacyIn = async () => {
  const { tokens, policies } = await acl();
  return {
    tokens: tokens.filter((t) => /^ilb-(backend|haproxy|frontend) agent token$/.test(t.Description)).length,
    policies: policies.filter((p) => /^ilb-(backend|haproxy|frontend)$/.test(p.Name)).length,
  };
};

/** What the previous version's acl-setup.sh left: per role a policy and a token found by description. */
async function createLegacy(): Promise<Record<string, string>> {
  const secrets: Record<string, string> = {};
  for (const [role, rules] of Object.entries(oldRules)) {
    const file = path.join(tmp, `${role}.hcl`);
    await writeFile(file, rules);
    const { stdout } = await bash(
      `consul acl policy create -name ilb-${role} -description "ilb ${role} agents" -rules @${file} >/dev/null && ` +
        `consul acl token create -description "ilb-${role} agent token" -policy-name ilb-${role} -format=json`,
    );
    secrets[role] = z.object({ SecretID: z.guid() }).parse(JSON.parse(stdout)).SecretID;
  }
  return secrets;
}

/** The write the attacker did with a backend's token: a rogue node in the backend pool. */
const rogueBackend = (token: string) =>
  api('PUT', '/v1/catalog/register', token, {
    Node: 'backend-rogue',
    Address: '127.0.0.99',
    Service: { Service: 'backend', Port: 8080 },
  });

/** The current tokens keep working: the servers' writes its own nodes, each default token reads. */
async function expectCurrentTokensWork() {
  const server = await api('PUT', '/v1/catalog/register', current.consul!, {
    Node: 'consul-probe',
    Address: '127.0.0.98',
  });
  expect(server.status).toBe(200);
  for (const role of ['backend', 'haproxy', 'frontend', 'consul']) {
    expect((await api('GET', '/v1/acl/token/self', current[`${role}-default`]!)).status).toBe(200);
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ilb-legacy-'));
  cluster = await startConsulCluster({ servers: 1 });
  // The current version's setup (no identity part here: no project given).
  current = z.record(z.string(), z.guid()).parse(JSON.parse((await aclSetup()).stdout));
});
afterAll(async () => {
  await cluster?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the legacy role tokens of an upgraded deployment', () => {
  it("the deploy's script deletes them: the stolen token is refused; a second run changes nothing", async () => {
    const legacy = await createLegacy();
    expect((await rogueBackend(legacy.backend!)).status).toBe(200);
    await api('PUT', '/v1/catalog/deregister', cluster.token, { Node: 'backend-rogue' });

    const first = await deployRetire();
    expect(first.stdout.trim()).toBe('legacy role tokens: deleted 3 tokens and 3 policies');
    const refused = await rogueBackend(legacy.backend!);
    expect(refused.status).toBe(403);
    expect(refused.text).toMatch(/ACL not found/);
    for (const secret of Object.values(legacy)) {
      expect((await api('GET', '/v1/acl/token/self', secret)).status).toBe(403);
    }
    expect(await legacyIn()).toEqual({ tokens: 0, policies: 0 });
    const names = (await acl()).policies.map((p) => p.Name);
    for (const kept of ['ilb-consul', 'ilb-backend-default', 'ilb-haproxy-default', 'ilb-frontend-default']) {
      expect(names).toContain(kept);
    }
    await expectCurrentTokensWork();

    const before = await acl();
    const second = await deployRetire();
    expect(second.stdout.trim()).toBe('legacy role tokens: deleted 0 tokens and 0 policies');
    expect(await acl()).toEqual(before);
  });

  it('acl-setup.sh keeps them while an old agent runs with one, and retires them once it is gone', async () => {
    const legacy = await createLegacy();
    // A backend VM of the old image: its agent holds the shared backend token, no identity login.
    const old = await cluster.startClient({ nodeName: 'backend-old1', agentToken: legacy.backend });
    const kept = await aclSetup();
    expect(kept.stderr).toContain('legacy role tokens kept: backend-old1 run without an identity login');
    expect(await legacyIn()).toEqual({ tokens: 3, policies: 3 });
    expect((await api('GET', '/v1/acl/token/self', legacy.backend!)).status).toBe(200);

    await old.stop();
    await waitFor('backend-old1 no longer alive', async () => {
      const { stdout } = await bash('consul members -status=alive');
      return !stdout.includes('backend-old1');
    });
    const retired = await aclSetup();
    expect(retired.stderr).toContain('acl-setup: retired 6 legacy role tokens and policies');
    expect(await legacyIn()).toEqual({ tokens: 0, policies: 0 });
    expect((await rogueBackend(legacy.backend!)).status).toBe(403);
    await expectCurrentTokensWork();

    const before = await acl();
    const again = await aclSetup();
    expect(again.stderr).not.toContain('retired');
    expect(await acl()).toEqual(before);
  });

  it('acl-setup.sh retires them while the agents that run hold their own identity login', async () => {
    const md = createMetadataServer({ port: 0 });
    try {
      const project = 'legacy-project';
      const ip = `${cluster.prefix}.30`;
      const host = await md.addInstance({
        id: '4410925612880337112',
        name: 'backend-new1',
        zone: 'us-central1-a',
        ip,
        projectId: project,
        projectNumber: '7',
        attributes: {},
      });
      const identityEnv = {
        ILB_IDENTITY_PROJECT: project,
        ILB_IDENTITY_JWKS_URL: await md.identityJwksUrl(),
      };
      await aclSetup(identityEnv);
      const legacy = await createLegacy();
      // A VM of the new image: its agent runs with the token its identity login gave it.
      const audience = encodeURIComponent(`https://consul.ilb.internal/${project}`);
      const jwt = await (
        await fetch(
          `http://${host}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${audience}&format=full`,
          { headers: { 'Metadata-Flavor': 'Google' } },
        )
      ).text();
      const login = await api('POST', '/v1/acl/login', '', {
        AuthMethod: 'gce-instance-identity',
        BearerToken: jwt,
      });
      expect(login.status).toBe(200);
      const agentToken = z.object({ SecretID: z.guid() }).parse(JSON.parse(login.text)).SecretID;
      const agent = await cluster.startClient({ nodeName: 'backend-new1', ip, agentToken });
      try {
        const retired = await aclSetup(identityEnv);
        expect(retired.stderr).not.toContain('kept');
        expect(retired.stderr).toContain('acl-setup: retired 6 legacy role tokens and policies');
        expect(await legacyIn()).toEqual({ tokens: 0, policies: 0 });
        expect((await rogueBackend(legacy.backend!)).status).toBe(403);
        // The new agent's own token is untouched.
        expect((await api('GET', '/v1/acl/token/self', agentToken)).status).toBe(200);
      } finally {
        await agent.stop();
      }
    } finally {
      await md.stop();
    }
  });
});
