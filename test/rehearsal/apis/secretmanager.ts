/**
 * Secret Manager v1: secrets (list paged), versions (add, list newest first, access by number or `latest`) and
 * each secret's IAM policy. Names come back with the project *number*, as Secret Manager returns
 * them; a payload's `dataCrc32c` is checked as the service does
 * (https://cloud.google.com/secret-manager/docs/reference/rest/v1/SecretPayload).
 */
import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import type { PolicyStore } from './iam-policy';
import {
  alreadyExists,
  applyMask,
  duration,
  fail,
  guard,
  invalid,
  labels,
  notFound,
  now,
  parse,
  router,
} from './kit';

const replication = z.union([
  z.strictObject({ automatic: z.strictObject({ customerManagedEncryption: z.unknown().optional() }) }),
  z.strictObject({
    userManaged: z.strictObject({ replicas: z.array(z.strictObject({ location: z.string() })).min(1) }),
  }),
]);
const secretBody = z.strictObject({
  replication: replication.optional(),
  labels: labels.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  etag: z.string().optional(),
  name: z.string().optional(),
  // The rest of Secret's fields: gcloud sends the whole resource on update, with a mask.
  createTime: z.string().optional(),
  topics: z.array(z.strictObject({ name: z.string() })).optional(),
  expireTime: z.string().optional(),
  ttl: duration.optional(),
  rotation: z
    .strictObject({ nextRotationTime: z.string().optional(), rotationPeriod: duration.optional() })
    .optional(),
  versionAliases: z.record(z.string(), z.string()).optional(),
  versionDestroyTtl: duration.optional(),
  customerManagedEncryption: z.unknown().optional(),
});
const addVersion = z.strictObject({
  payload: z.strictObject({ data: z.base64(), dataCrc32c: z.string().regex(/^\d+$/).optional() }),
});

interface Secret {
  body: Record<string, unknown>;
  versions: { name: string; createTime: string; data: string }[];
}

const CRC32C_TABLE = Array.from({ length: 256 }, (_v, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32c(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC32C_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function secretManagerModule(facts: ProjectFacts, policies: PolicyStore): ApiModule {
  const { projectNumber } = facts;
  const secrets = new Map<string, Secret>();
  const nameOf = (id: string): string => `projects/${projectNumber}/secrets/${id}`;
  const known = (p: string | undefined): void => {
    if (p !== facts.project && p !== projectNumber) notFound(`Project ${p}`);
  };
  const secretOf = (p: Record<string, string>): Secret => {
    known(p.project);
    return secrets.get(p.secret ?? '') ?? notFound(`Secret [${nameOf(p.secret ?? '')}]`);
  };
  const versionJson = (v: Secret['versions'][number]): Record<string, unknown> => ({
    name: v.name,
    createTime: v.createTime,
    state: 'ENABLED',
    replicationStatus: { automatic: {} },
    etag: `"${v.createTime}"`,
    clientSpecifiedPayloadChecksum: true,
  });

  const route = router([
    [
      'POST /v1/projects/{project}/secrets',
      (req, p) => {
        known(p.project);
        const id = req.query.get('secretId') ?? invalid('secretId is required');
        if (!/^[\w-]{1,255}$/.test(id)) invalid(`Invalid secretId ${id}`);
        const body = parse(secretBody, req.body, 'Secret');
        if (!body.replication) invalid('Secret.replication is required');
        if (secrets.has(id)) alreadyExists(`Secret [${nameOf(id)}]`);
        const { etag: _e, name: _n, createTime: _c, ...rest } = body;
        const secret = { name: nameOf(id), createTime: now(), etag: `"${Date.now()}"`, ...rest };
        secrets.set(id, { body: secret, versions: [] });
        return { status: 200, body: secret };
      },
    ],
    [
      // secrets.list, in name order, paged; gcloud applies its --filter client-side (it rewrites
      // nothing of it into the request), so a server-side `filter` is refused rather than ignored.
      'GET /v1/projects/{project}/secrets',
      (req, p) => {
        known(p.project);
        if (req.query.get('filter')) invalid('filter is not supported by this stand-in');
        const all = [...secrets.keys()].sort().map((id) => (secrets.get(id) as Secret).body);
        const size = Number(req.query.get('pageSize')) || 25000;
        const start = Number(req.query.get('pageToken') ?? 0);
        const body: Record<string, unknown> = { totalSize: all.length };
        if (all.length > start) body.secrets = all.slice(start, start + size);
        if (start + size < all.length) body.nextPageToken = String(start + size);
        return { status: 200, body };
      },
    ],
    ['GET /v1/projects/{project}/secrets/{secret}', (_req, p) => ({ status: 200, body: secretOf(p).body })],
    [
      'PATCH /v1/projects/{project}/secrets/{secret}',
      (req, p) => {
        const secret = secretOf(p);
        const mask = req.query.get('updateMask') ?? invalid('updateMask is required');
        const patch = parse(secretBody, req.body, 'Secret');
        if (patch.etag && patch.etag !== secret.body.etag) fail(409, 'ABORTED', 'etag mismatch');
        secret.body = { ...applyMask(secret.body, patch, mask), etag: `"${Date.now()}"` };
        return { status: 200, body: secret.body };
      },
    ],
    [
      'DELETE /v1/projects/{project}/secrets/{secret}',
      (_req, p) => {
        secretOf(p);
        secrets.delete(p.secret ?? '');
        policies.drop(nameOf(p.secret ?? ''));
        return { status: 200, body: {} };
      },
    ],
    [
      'POST /v1/projects/{project}/secrets/{secret}:addVersion',
      (req, p) => {
        const secret = secretOf(p);
        const { payload } = parse(addVersion, req.body, 'AddSecretVersionRequest');
        const data = Buffer.from(payload.data, 'base64');
        if (data.length > 64 * 1024) invalid('Secret payload exceeds 64 KiB');
        if (payload.dataCrc32c !== undefined && Number(payload.dataCrc32c) !== crc32c(data)) {
          invalid('Checksum mismatch: dataCrc32c does not match the payload');
        }
        const version = {
          name: `${nameOf(p.secret ?? '')}/versions/${secret.versions.length + 1}`,
          createTime: now(),
          data: payload.data,
        };
        secret.versions.push(version);
        return { status: 200, body: versionJson(version) };
      },
    ],
    [
      'GET /v1/projects/{project}/secrets/{secret}/versions',
      (req, p) => {
        const newest = [...secretOf(p).versions].reverse();
        const size = Number(req.query.get('pageSize')) || 25000; // 0 or absent: the server's default
        const start = Number(req.query.get('pageToken') ?? 0);
        const page = newest.slice(start, start + size);
        const body: Record<string, unknown> = { totalSize: newest.length };
        if (page.length) body.versions = page.map(versionJson);
        if (start + size < newest.length) body.nextPageToken = String(start + size);
        return { status: 200, body };
      },
    ],
    [
      'GET /v1/projects/{project}/secrets/{secret}/versions/{version}:access',
      (_req, p) => {
        const versions = secretOf(p).versions;
        const v = p.version === 'latest' ? versions.at(-1) : versions[Number(p.version) - 1];
        if (!v) notFound(`Secret Version [${nameOf(p.secret ?? '')}/versions/${p.version}]`);
        const data = Buffer.from(v.data, 'base64');
        return {
          status: 200,
          body: { name: v.name, payload: { data: v.data, dataCrc32c: String(crc32c(data)) } },
        };
      },
    ],
    [
      'GET /v1/projects/{project}/secrets/{secret}:getIamPolicy',
      (req, p) => (secretOf(p), policies.get(nameOf(p.secret ?? ''), req)),
    ],
    [
      'POST /v1/projects/{project}/secrets/{secret}:getIamPolicy',
      (req, p) => (secretOf(p), policies.get(nameOf(p.secret ?? ''), req)),
    ],
    [
      'POST /v1/projects/{project}/secrets/{secret}:setIamPolicy',
      (req, p) => (secretOf(p), policies.set(nameOf(p.secret ?? ''), req)),
    ],
  ]);
  return {
    name: 'secretmanager',
    handle: guard(route),
    inventory: () => [...secrets.keys()].map((id) => ({ kind: 'secret', name: nameOf(id) })),
  };
}
