/**
 * IAM policies on any resource (project, secret, topic, subscription, Cloud Run service), with the
 * rules of https://cloud.google.com/iam/docs/reference/rest/v1/Policy and
 * https://cloud.google.com/iam/docs/policies#versions: an etag that must match on write (409 ABORTED
 * otherwise), version 3 required for conditional bindings, and a version-1 read of a policy with
 * conditions showing those bindings' roles suffixed `_withcond_…` and no condition.
 */
import { createHash } from 'node:crypto';

import { z } from 'zod';

import type { ApiRequest, ApiResponse } from '../contract';
import { fail, invalid, parse, sameEtag } from './kit';

const condition = z.strictObject({
  expression: z.string().min(1),
  title: z.string().min(1).max(100),
  description: z.string().optional(),
  location: z.string().optional(),
});
const member = z
  .string()
  .regex(
    /^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|deleted:user|deleted:serviceAccount|deleted:group|principal|principalSet|projectOwner|projectEditor|projectViewer):.+)$/,
    'not a valid IAM member',
  );
const binding = z.strictObject({
  role: z
    .string()
    .regex(/^(roles\/[\w.]+|projects\/[\w-]+\/roles\/[\w.]+|organizations\/\d+\/roles\/[\w.]+)$/),
  members: z.array(member).min(1),
  condition: condition.optional(),
});
const policy = z.strictObject({
  version: z.number().int().min(0).max(3).optional(),
  bindings: z.array(binding).optional(),
  auditConfigs: z.array(z.unknown()).optional(),
  etag: z.string().optional(),
});
const setBody = z.strictObject({ policy, updateMask: z.string().optional() });
const getBody = z.strictObject({
  options: z.strictObject({ requestedPolicyVersion: z.number().int().min(0).max(3).optional() }).optional(),
});

type Policy = z.infer<typeof policy>;

/** Checks a binding against what exists: service accounts of this project, custom roles not deleted. */
export interface Directory {
  /** Undefined when the member is fine; else why not (Google answers 400). */
  refuseMember(member: string): string | undefined;
  refuseRole(role: string): string | undefined;
}

export const openDirectory: Directory = { refuseMember: () => undefined, refuseRole: () => undefined };

function etagOf(p: Policy, write: number): string {
  return createHash('sha256')
    .update(`${write}:${JSON.stringify(p.bindings ?? [])}`)
    .digest('base64')
    .slice(0, 12);
}

/** The policies of one kind of resource, keyed by resource name. */
export class PolicyStore {
  private readonly policies = new Map<string, Policy>();
  private writes = 0;

  constructor(private readonly directory: Directory = openDirectory) {}

  drop(resource: string): void {
    this.policies.delete(resource);
  }

  bindings(resource: string): { role: string; members: string[] }[] {
    return this.policies.get(resource)?.bindings ?? [];
  }

  private current(resource: string): Policy {
    return this.policies.get(resource) ?? { version: 1, bindings: [], etag: 'ACAB' };
  }

  /** `:getIamPolicy`, by GET (`options.requestedPolicyVersion` in the query) or POST (in the body). */
  get(resource: string, req: ApiRequest): ApiResponse {
    const fromQuery = req.query.get('options.requestedPolicyVersion');
    const asked =
      req.method === 'GET'
        ? Number(fromQuery ?? 0)
        : (parse(getBody, req.body, 'GetIamPolicyRequest').options?.requestedPolicyVersion ?? 0);
    const p = this.current(resource);
    const bindings = p.bindings ?? [];
    const conditional = bindings.some((b) => b.condition);
    if (asked >= 3 || !conditional) {
      const body: Policy = { version: conditional ? 3 : 1, etag: p.etag };
      if (bindings.length) body.bindings = bindings;
      return { status: 200, body };
    }
    const shown = bindings.map((b) =>
      b.condition
        ? {
            role: `${b.role}_withcond_${createHash('sha1').update(JSON.stringify(b.condition)).digest('hex').slice(0, 20)}`,
            members: b.members,
          }
        : b,
    );
    return { status: 200, body: { version: 1, etag: p.etag, bindings: shown } };
  }

  /** `:setIamPolicy`. */
  set(resource: string, req: ApiRequest): ApiResponse {
    const { policy: next } = parse(setBody, req.body, 'SetIamPolicyRequest');
    const current = this.current(resource);
    if (next.etag !== undefined && !sameEtag(next.etag, current.etag ?? '')) {
      fail(
        409,
        'ABORTED',
        'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.',
      );
    }
    const bindings = next.bindings ?? [];
    if (bindings.some((b) => b.condition) && (next.version ?? 1) < 3) {
      invalid(
        'Conditional bindings require policy version 3 (https://cloud.google.com/iam/help/conditions/resource-policies).',
      );
    }
    for (const b of bindings) {
      if (b.role.includes('_withcond_'))
        invalid(`Role ${b.role} does not exist (a version-1 view of a conditional binding).`);
      const roleRefused = this.directory.refuseRole(b.role);
      if (roleRefused) invalid(roleRefused);
      for (const m of b.members) {
        const refused = this.directory.refuseMember(m);
        if (refused) invalid(refused);
      }
    }
    const stored: Policy = { version: bindings.some((b) => b.condition) ? 3 : 1, bindings };
    stored.etag = etagOf(stored, ++this.writes);
    this.policies.set(resource, stored);
    return { status: 200, body: stored };
  }
}
