import { createHash } from 'node:crypto';
import type { GcpClients } from './client';
import { classifyGoogleError } from './errors';

/**
 * The managed instance groups' calls on the factory's clients (zonal and regional): the managed
 * instances of a group page by page, its `status.isStable`, and `recreateInstances`; its recorded
 * instance-creation errors (`listErrors`) and size (`createGroupErrorsApi`). `onRequest`
 * is told of every HTTP request, so a caller can show calls grow with pages. Failures are thrown
 * as classified by the one Google error mapping.
 */

/** A managed instance group, zonal or regional. */
export interface GroupRef {
  /** `projects/<p>/zones/<z>/instanceGroupManagers/<name>` (or `regions/<r>`). */
  key: string;
  project: string;
  name: string;
  scope: { kind: 'zone'; zone: string } | { kind: 'region'; region: string };
}

export interface GroupsApi {
  /** Every managed instance of the group, as plain objects with a string id (all pages). */
  listManagedInstances(group: GroupRef): Promise<unknown[]>;
  isStable(group: GroupRef): Promise<boolean>;
  /** `recreateInstances` for one instance URL; returns without waiting for the operation. */
  recreate(group: GroupRef, instance: string, requestId: string): Promise<void>;
}

/** Largest page Compute serves for `listManagedInstances`. */
const PAGE_SIZE = 500;

/**
 * uint64 ids reach us as a string (REST JSON), a number or a protobufjs Long: a Long's own
 * `toString` is exact (unsigned), `Number` of it would not be.
 */
export function idText(id: unknown): string | undefined {
  if (id === null || id === undefined) return undefined;
  if (typeof id === 'string') return id;
  if (typeof id === 'number') return Number.isSafeInteger(id) ? String(id) : undefined;
  if (typeof id === 'object' && typeof (id as { toString?: unknown }).toString === 'function') {
    const text = (id as { toString(): string }).toString();
    return /^[0-9]+$/.test(text) ? text : undefined;
  }
  return undefined;
}

/** A request id (a UUID, as Compute wants) naming one recreation of one instance id in one group. */
export function recreateRequestId(groupKey: string, instanceId: string): string {
  const h = createHash('sha256').update(`recreate\u0000${groupKey}\u0000${instanceId}`).digest('hex');
  // RFC 4122 layout, version 5 style (name-based), variant 10xx.
  const variant = ((parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

interface RawManaged {
  id?: unknown;
  instance?: string | null;
  instanceStatus?: string | null;
  currentAction?: string | null;
}

const plain = (m: RawManaged) => ({
  id: idText(m.id),
  instance: m.instance ?? '',
  instanceStatus: m.instanceStatus ?? undefined,
  currentAction: m.currentAction ?? undefined,
});

interface ApiOptions {
  timeoutMs?: number;
  pageSize?: number;
  onRequest?: () => void;
}

/** What both factories share: the clients, call options and classified requests. */
function kit(clients: GcpClients, options: ApiOptions) {
  // The sweep retries by running again a minute later: one retry here is enough.
  const call = { timeout: options.timeoutMs ?? 15_000, maxRetries: 1, autoPaginate: false } as const;
  const request = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    options.onRequest?.();
    try {
      return await work();
    } catch (err) {
      throw classifyGoogleError(err, what);
    }
  };
  const zonal = () => clients.ready('zonalGroups');
  const regional = () => clients.ready('regionalGroups');
  const get = async (group: GroupRef) => {
    const base = { project: group.project, instanceGroupManager: group.name };
    const [igm] = await request(`instanceGroupManagers.get ${group.key}`, async () =>
      group.scope.kind === 'zone'
        ? (await zonal()).get({ ...base, zone: group.scope.zone }, call)
        : (await regional()).get({ ...base, region: group.scope.region }, call),
    );
    return igm;
  };
  return {
    zonal,
    regional,
    get,
    call,
    request,
    maxResults: options.pageSize ?? PAGE_SIZE,
  };
}

export function createGroupsApi(clients: GcpClients, options: ApiOptions = {}): GroupsApi {
  const { zonal, regional, get, call, request, maxResults } = kit(clients, options);

  return {
    async listManagedInstances(group) {
      const out: unknown[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page < 10_000; page++) {
        const base = { project: group.project, instanceGroupManager: group.name, maxResults, pageToken };
        const [items, next] = await request(`listManagedInstances ${group.key}`, async () =>
          group.scope.kind === 'zone'
            ? (await zonal()).listManagedInstances({ ...base, zone: group.scope.zone }, call)
            : (await regional()).listManagedInstances({ ...base, region: group.scope.region }, call),
        );
        for (const m of items) out.push(plain(m));
        pageToken = next?.pageToken ?? undefined;
        if (!pageToken) return out;
      }
      throw classifyGoogleError(new Error('too many pages'), `listManagedInstances ${group.key}`);
    },
    async isStable(group) {
      return (await get(group)).status?.isStable === true;
    },
    async recreate(group, instance, requestId) {
      const base = { project: group.project, instanceGroupManager: group.name, requestId };
      await request(`recreateInstances ${group.key}`, async () => {
        if (group.scope.kind === 'zone') {
          await (
            await zonal()
          ).recreateInstances(
            {
              ...base,
              zone: group.scope.zone,
              instanceGroupManagersRecreateInstancesRequestResource: { instances: [instance] },
            },
            call,
          );
        } else {
          await (
            await regional()
          ).recreateInstances(
            {
              ...base,
              region: group.scope.region,
              regionInstanceGroupManagersRecreateRequestResource: { instances: [instance] },
            },
            call,
          );
        }
      });
    },
  };
}

/** One error the group recorded for an instance action (`listErrors`). */
export interface GroupError {
  code: string;
  message: string;
  /** RFC 3339. */
  timestamp: string;
  /** The action that failed (`CREATING`, …) and the instance it was for, when given. */
  action?: string;
  instance?: string;
}

export interface GroupErrorsApi {
  /**
   * The errors the group recorded at or after `sinceMs`, read page by page up to `maxPages`
   * (`truncated` when more were left). Order is not relied on: every page read is filtered.
   * https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/listErrors
   */
  listErrors(
    group: GroupRef,
    window: { sinceMs: number; maxPages: number },
  ): Promise<{ errors: GroupError[]; truncated: boolean }>;
  /** The group's target size and how many of its instances are still being created. */
  size(group: GroupRef): Promise<{ targetSize: number; creating: number }>;
}

/** A group from its URL or partial path (an autoscaler's `target`), or undefined. */
export function groupRefOf(url: string): GroupRef | undefined {
  const m = /projects\/([^/]+)\/(zones|regions)\/([^/]+)\/instanceGroupManagers\/([^/?#]+)$/.exec(url);
  if (!m) return undefined;
  const [, project, kind, location, name] = m as unknown as [string, string, string, string, string];
  const scope =
    kind === 'zones'
      ? { kind: 'zone' as const, zone: location }
      : { kind: 'region' as const, region: location };
  return {
    key: `projects/${project}/${kind}/${location}/instanceGroupManagers/${name}`,
    project,
    name,
    scope,
  };
}

export function createGroupErrorsApi(clients: GcpClients, options: ApiOptions = {}): GroupErrorsApi {
  const { zonal, regional, get, call, request, maxResults } = kit(clients, options);
  return {
    async listErrors(group, window) {
      const errors: GroupError[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page < window.maxPages; page++) {
        const base = { project: group.project, instanceGroupManager: group.name, maxResults, pageToken };
        const [items, next] = await request(`listErrors ${group.key}`, async () =>
          group.scope.kind === 'zone'
            ? (await zonal()).listErrors({ ...base, zone: group.scope.zone }, call)
            : (await regional()).listErrors({ ...base, region: group.scope.region }, call),
        );
        for (const e of items) {
          const at = Date.parse(e.timestamp ?? '');
          if (!(at >= window.sinceMs)) continue;
          errors.push({
            code: e.error?.code ?? 'UNKNOWN',
            message: e.error?.message ?? '',
            timestamp: e.timestamp ?? '',
            ...(e.instanceActionDetails?.action ? { action: e.instanceActionDetails.action } : {}),
            ...(e.instanceActionDetails?.instance ? { instance: e.instanceActionDetails.instance } : {}),
          });
        }
        pageToken = next?.pageToken ?? undefined;
        if (!pageToken) return { errors, truncated: false };
      }
      return { errors, truncated: true };
    },
    async size(group) {
      const igm = await get(group);
      const creating =
        (igm.currentActions?.creating ?? 0) + (igm.currentActions?.creatingWithoutRetries ?? 0);
      return { targetSize: igm.targetSize ?? 0, creating };
    },
  };
}
