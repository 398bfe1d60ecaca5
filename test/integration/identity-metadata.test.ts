/**
 * The identity pieces that need no Consul: the metadata stand-in's identity tokens (Google's format,
 * verifiable with the served JWKS, one instance per listener) and the images' metadata guard (the
 * nftables rule text: only root and the service users reach the metadata server's HTTP API).
 */
import { createPublicKey, createVerify } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

import { googleIssuer, serviceAccountId } from '../../infra-scripts/local/metadata-identity';
import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { randomLoopbackPrefix } from '../harness';

const prefix = randomLoopbackPrefix();
let md: MetadataServer;
const hosts: string[] = [];

beforeAll(async () => {
  md = createMetadataServer({ port: 0 });
  for (const [n, name] of ['backend-a1', 'backend-b2'].entries()) {
    hosts.push(
      await md.addInstance({
        id: `812345678901234567${n}`,
        name,
        zone: 'us-central1-a',
        ip: `${prefix}.${n + 10}`,
        projectId: 'id-project',
        projectNumber: '4242',
        createdAt: 1_700_000_000,
      }),
    );
  }
});

afterAll(async () => {
  await md?.stop();
});

const identity = (
  host: string,
  query: string,
  headers: Record<string, string> = { 'Metadata-Flavor': 'Google' },
) =>
  fetch(`http://${host}/computeMetadata/v1/instance/service-accounts/default/identity?${query}`, { headers });

const jwkSchema = z.object({ kid: z.string(), kty: z.literal('RSA'), n: z.string(), e: z.string() });

describe("the metadata stand-in's identity tokens", () => {
  it('are RS256 JWTs in Google format=full shape, verifiable with the served JWKS', async () => {
    const res = await identity(hosts[0]!, 'audience=https%3A%2F%2Fconsul.example%2Fp&format=full');
    expect(res.status).toBe(200);
    const [header, payload, signature] = (await res.text()).split('.') as [string, string, string];
    const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()) as unknown;
    const head = z.object({ alg: z.literal('RS256'), kid: z.string() }).parse(decode(header));
    const jwks = z
      .object({ keys: z.array(jwkSchema) })
      .parse(await (await fetch(await md.identityJwksUrl())).json());
    const jwk = jwks.keys.find((k) => k.kid === head.kid)!;
    const key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
    const verified = createVerify('RSA-SHA256')
      .update(`${header}.${payload}`)
      .verify(key, signature, 'base64url');
    expect(verified).toBe(true);
    const claims = decode(payload) as Record<string, unknown>;
    expect(claims).toMatchObject({
      iss: googleIssuer,
      aud: 'https://consul.example/p',
      azp: serviceAccountId('4242'),
      sub: serviceAccountId('4242'),
      google: {
        compute_engine: {
          instance_id: '8123456789012345670',
          instance_name: 'backend-a1',
          zone: 'us-central1-a',
          project_id: 'id-project',
          project_number: 4242,
          instance_creation_timestamp: 1_700_000_000,
        },
      },
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
  });

  it('answer each listener with its own instance only; standard format omits the instance claims', async () => {
    const token = await (await identity(hosts[1]!, 'audience=a')).text();
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(claims.google).toBeUndefined();
    const full = await (await identity(hosts[1]!, 'audience=a&format=full')).text();
    expect(full.split('.')[1]).toBeDefined();
    expect(Buffer.from(full.split('.')[1]!, 'base64url').toString()).toContain(
      '"instance_name":"backend-b2"',
    );
  });

  it('refuse a request without Metadata-Flavor (403) or without an audience (400)', async () => {
    expect((await identity(hosts[0]!, 'audience=a', {})).status).toBe(403);
    expect((await identity(hosts[0]!, 'format=full')).status).toBe(400);
  });
});

describe("the images' metadata guard", () => {
  const files = path.resolve('packer');

  it('rejects every user but root and the service users on the metadata HTTP port, not DNS', async () => {
    const text = await readFile(path.join(files, 'consul/files/metadata-guard.nft'), 'utf8');
    // Both of the server's addresses, every TCP port but DNS (metadata-guard.test.ts loads it for real).
    const rules = text
      .split('\n')
      .filter((l) => l.includes('reject'))
      .map((l) => l.trim());
    expect(rules).toEqual([
      'ip daddr 169.254.169.254 tcp dport != 53 meta skuid != $metadata_users counter reject with tcp reset',
      'ip6 daddr fd20:ce::254 tcp dport != 53 meta skuid != $metadata_users counter reject with tcp reset',
    ]);
    expect(text).toContain('define metadata_users = { "root", "consul", "ilb" }');
    // Loaded by a unit the image enables, after the users exist and checked with `nft -c` first.
    const install = await readFile(path.join(files, 'consul/files/install-packages.sh'), 'utf8');
    expect(install.indexOf('useradd --system --home /opt/ilb')).toBeLessThan(install.indexOf('nft -c -f'));
    expect(install).toContain('systemctl enable ilb-metadata-guard.service');
  });

  it('allows every user a packer unit runs as (a new one would lose its metadata)', async () => {
    const users = new Set<string>();
    for (const role of ['consul', 'backend', 'haproxy', 'frontend']) {
      const dir = path.join(files, role, 'files');
      for (const f of (await readdir(dir)).filter((n) => n.endsWith('.service'))) {
        const user = /^User=(.+)$/m.exec(await readFile(path.join(dir, f), 'utf8'))?.[1];
        if (user) users.add(user);
      }
    }
    expect([...users].sort()).toEqual(['consul', 'ilb']);
  });

  it('is loaded before every unit the images start (each may read the metadata)', async () => {
    const guard = await readFile(path.join(files, 'consul/files/ilb-metadata-guard.service'), 'utf8');
    const before = new Set([...guard.matchAll(/^Before=(.+)$/gm)].flatMap((m) => m[1]!.split(' ')));
    const units: string[] = [];
    for (const role of ['consul', 'backend', 'haproxy', 'frontend']) {
      const dir = path.join(files, role, 'files');
      units.push(...(await readdir(dir)).filter((n) => n.endsWith('.service')));
    }
    const unguarded = units.filter((u) => u !== 'ilb-metadata-guard.service' && !before.has(u));
    expect(unguarded).toEqual([]);
  });

  it('fails closed: the bootstrap every agent and role unit requires needs the guard loaded', async () => {
    const bootstrap = await readFile(path.join(files, 'consul/files/ilb-bootstrap.service'), 'utf8');
    expect(bootstrap).toMatch(/^Requires=ilb-metadata-guard\.service$/m);
    const consul = await readFile(path.join(files, 'consul/files/consul.service'), 'utf8');
    expect(consul).toMatch(/^Requires=ilb-bootstrap\.service$/m);
  });
});
