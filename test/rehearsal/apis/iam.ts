/**
 * IAM v1: service accounts and project custom roles. A deleted custom role stays readable with
 * `deleted: true` and can be undeleted for 7 days; its ID cannot be reused meanwhile
 * (https://cloud.google.com/iam/docs/creating-custom-roles#deleting-custom-role).
 */
import { createHash } from 'node:crypto';

import { z } from 'zod';

import type { ApiModule, ProjectFacts } from '../contract';
import type { Directory } from './iam-policy';
import { alreadyExists, applyMask, fail, guard, notFound, parse, router, sameEtag } from './kit';

const UNDELETE_WINDOW_MS = 7 * 24 * 3600 * 1000;

const createAccount = z.strictObject({
  accountId: z.string().regex(/^[a-z]([-a-z0-9]{4,28}[a-z0-9])$/, 'accountId must be 6-30 of [a-z0-9-]'),
  serviceAccount: z
    .strictObject({
      displayName: z.string().max(100).optional(),
      description: z.string().max(256).optional(),
    })
    .optional(),
});
/** Services whose permissions custom roles may hold here; any other prefix is refused as unknown. */
const SERVICES = [
  'compute',
  'monitoring',
  'logging',
  'pubsub',
  'secretmanager',
  'iam',
  'run',
  'cloudfunctions',
  'storage',
];
const permission = z
  .string()
  .regex(/^[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+$/, 'not a permission')
  .refine((p) => SERVICES.includes(p.split('.')[0] ?? ''), 'Permission is not valid');
/** What `permissions:queryTestablePermissions` lists (gcloud reads it before it creates or updates a role). */
const TESTABLE = [
  'compute.autoscalers.get', 'compute.autoscalers.list', 'compute.autoscalers.update', 'compute.instanceGroupManagers.get',
  'compute.instanceGroupManagers.list', 'compute.instanceGroupManagers.update', 'compute.instanceGroupManagers.use',
  'compute.instanceGroups.get', 'compute.instanceGroups.list', 'compute.instanceTemplates.get', 'compute.instances.get',
  'compute.instances.list', 'compute.regionOperations.get', 'compute.zoneOperations.get', 'monitoring.timeSeries.create',
  'monitoring.timeSeries.list', 'logging.logEntries.create', 'pubsub.topics.publish', 'secretmanager.versions.access',
]; // prettier-ignore
const roleBody = z.strictObject({
  name: z.string().optional(),
  title: z.string().max(100).optional(),
  description: z.string().max(300).optional(),
  includedPermissions: z.array(permission).optional(),
  stage: z.enum(['ALPHA', 'BETA', 'GA', 'DEPRECATED', 'DISABLED', 'EAP']).optional(),
  etag: z.string().optional(),
});
const createRole = z.strictObject({ roleId: z.string().regex(/^[a-zA-Z0-9_.]{3,64}$/), role: roleBody });
const undeleteBody = z.strictObject({ etag: z.string().optional() });

interface Role {
  name: string;
  title?: string;
  description?: string;
  includedPermissions?: string[];
  stage?: string;
  etag: string;
  deleted?: boolean;
}

export interface IamModule extends ApiModule {
  directory: Directory;
}

export function iamModule(facts: ProjectFacts, clock: () => number = Date.now): IamModule {
  const { project } = facts;
  const accounts = new Map<string, Record<string, string>>();
  const roles = new Map<string, Role>();
  const deletedAt = new Map<string, number>();
  const etag = (r: Omit<Role, 'etag'>): string =>
    createHash('sha1').update(JSON.stringify(r)).digest('base64').slice(0, 12);
  const same = (p: string): void => {
    if (p !== project && p !== '-') notFound(`Project ${p}`);
  };
  const roleOf = (id: string): Role => roles.get(id) ?? notFound(`Role projects/${project}/roles/${id}`);
  const save = (id: string, r: Omit<Role, 'etag'>): Role => {
    const role = { ...r, etag: etag(r) };
    roles.set(id, role);
    return role;
  };

  const route = router([
    [
      'POST /v1/permissions:queryTestablePermissions',
      (req) => {
        parse(
          z.strictObject({
            fullResourceName: z.string(),
            pageSize: z.number().optional(),
            pageToken: z.string().optional(),
          }),
          req.body,
          'QueryTestablePermissionsRequest',
        );
        const permissions = TESTABLE.map((name) => ({
          name,
          stage: 'GA',
          customRolesSupportLevel: 'SUPPORTED',
        }));
        return { status: 200, body: { permissions } };
      },
    ],
    [
      'POST /v1/projects/{project}/serviceAccounts',
      (req, p) => {
        same(p.project ?? '');
        const body = parse(createAccount, req.body, 'CreateServiceAccountRequest');
        const email = `${body.accountId}@${project}.iam.gserviceaccount.com`;
        if (accounts.has(email)) alreadyExists(`Service account ${email}`);
        const account = {
          name: `projects/${project}/serviceAccounts/${email}`,
          projectId: project,
          uniqueId: String(100000000000000000000n + BigInt(accounts.size + 1)),
          email,
          etag: 'MDEwMjE5MjA=',
          oauth2ClientId: String(100000000000000000000n + BigInt(accounts.size + 1)),
          ...(body.serviceAccount?.displayName ? { displayName: body.serviceAccount.displayName } : {}),
          ...(body.serviceAccount?.description ? { description: body.serviceAccount.description } : {}),
        };
        accounts.set(email, account);
        return { status: 200, body: account };
      },
    ],
    [
      'GET /v1/projects/{project}/serviceAccounts/{email}',
      (_req, p) => ({
        status: 200,
        body: accounts.get(p.email ?? '') ?? notFound(`Service account ${p.email}`),
      }),
    ],
    [
      'DELETE /v1/projects/{project}/serviceAccounts/{email}',
      (_req, p) => {
        if (!accounts.delete(p.email ?? '')) notFound(`Service account ${p.email}`);
        return { status: 200, body: {} };
      },
    ],
    [
      'POST /v1/projects/{project}/roles',
      (req, p) => {
        same(p.project ?? '');
        const body = parse(createRole, req.body, 'CreateRoleRequest');
        if (roles.has(body.roleId)) {
          alreadyExists(
            `A role named ${body.roleId} in projects/${project} (a deleted role keeps its ID for 37 days)`,
          );
        }
        const { etag: _ignored, name: _name, ...rest } = body.role;
        return {
          status: 200,
          body: save(body.roleId, { name: `projects/${project}/roles/${body.roleId}`, ...rest }),
        };
      },
    ],
    ['GET /v1/projects/{project}/roles/{id}', (_req, p) => ({ status: 200, body: roleOf(p.id ?? '') })],
    [
      'PATCH /v1/projects/{project}/roles/{id}',
      (req, p) => {
        const role = roleOf(p.id ?? '');
        if (role.deleted) fail(400, 'FAILED_PRECONDITION', `You can't update a deleted role: ${role.name}`);
        const body = parse(roleBody, req.body, 'Role');
        if (body.etag && !sameEtag(body.etag, role.etag))
          fail(409, 'ABORTED', 'The role was changed concurrently.');
        const { etag: _e, ...rest } = applyMask(role, body, req.query.get('updateMask'));
        return { status: 200, body: save(p.id ?? '', rest) };
      },
    ],
    [
      'DELETE /v1/projects/{project}/roles/{id}',
      (_req, p) => {
        const role = roleOf(p.id ?? '');
        if (role.deleted) fail(400, 'FAILED_PRECONDITION', `Role ${role.name} is already deleted.`);
        deletedAt.set(p.id ?? '', clock());
        const { etag: _e, ...rest } = role;
        return { status: 200, body: save(p.id ?? '', { ...rest, deleted: true }) };
      },
    ],
    [
      'POST /v1/projects/{project}/roles/{id}:undelete',
      (req, p) => {
        parse(undeleteBody, req.body, 'UndeleteRoleRequest');
        const id = p.id ?? '';
        const role = roleOf(id);
        if (!role.deleted) fail(400, 'FAILED_PRECONDITION', `Role ${role.name} is not deleted.`);
        if (clock() - (deletedAt.get(id) ?? 0) > UNDELETE_WINDOW_MS) {
          fail(
            400,
            'FAILED_PRECONDITION',
            `Role ${role.name} was deleted more than 7 days ago and cannot be undeleted.`,
          );
        }
        const { etag: _e, deleted: _d, ...rest } = role;
        deletedAt.delete(id);
        return { status: 200, body: save(id, rest) };
      },
    ],
  ]);

  const saSuffix = `@${project}.iam.gserviceaccount.com`;
  return {
    name: 'iam',
    handle: guard(route),
    inventory: () => [
      ...[...accounts.keys()].map((name) => ({ kind: 'serviceAccount', name })),
      ...[...roles.values()].filter((r) => !r.deleted).map((r) => ({ kind: 'role', name: r.name })),
    ],
    directory: {
      refuseMember: (m) =>
        m.startsWith('serviceAccount:') &&
        m.endsWith(saSuffix) &&
        !accounts.has(m.slice('serviceAccount:'.length))
          ? `Service account ${m.slice('serviceAccount:'.length)} does not exist.`
          : undefined,
      refuseRole: (r) => {
        const prefix = `projects/${project}/roles/`;
        if (!r.startsWith(prefix)) return undefined;
        const role = roles.get(r.slice(prefix.length));
        return !role || role.deleted
          ? `Role ${r} is not supported for this resource (it does not exist or is deleted).`
          : undefined;
      },
    },
  };
}
