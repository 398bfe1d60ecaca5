import { createHash } from 'node:crypto';
import type { InstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/instance_group_managers_client';
import type { RegionInstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/region_instance_group_managers_client';
import type { ComputeEndpoint } from '../config';
import type { WatchedGroup } from './config';

/**
 * The instance-group calls of the sweep through the official clients (zonal and regional): the
 * managed instances of a group page by page, its `status.isStable`, and `recreateInstances`.
 * Every HTTP request counts one call in `calls`, so the bench can show calls grow with pages.
 */

export interface ApiCalls {
  compute: number;
  consul: number;
  monitoring: number;
}

export const noCalls = (): ApiCalls => ({ compute: 0, consul: 0, monitoring: 0 });

export interface GroupsApi {
  /** Every managed instance of the group, as plain objects with a string id (all pages). */
  listManagedInstances(group: WatchedGroup): Promise<unknown[]>;
  isStable(group: WatchedGroup): Promise<boolean>;
  /** `recreateInstances` for one instance URL; returns without waiting for the operation. */
  recreate(group: WatchedGroup, instance: string, requestId: string): Promise<void>;
  close(): Promise<void>;
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

export function createGroupsApi(
  endpoint: ComputeEndpoint,
  calls: ApiCalls,
  options: { timeoutMs?: number; pageSize?: number } = {},
): GroupsApi {
  const timeout = options.timeoutMs ?? 15_000;
  const maxResults = options.pageSize ?? PAGE_SIZE;
  let zonal: InstanceGroupManagersClient | undefined;
  let regional: RegionInstanceGroupManagersClient | undefined;

  const clientOptions = () => {
    const opts: NonNullable<ConstructorParameters<typeof InstanceGroupManagersClient>[0]> = { ...endpoint };
    // Credentials never travel over plain http: an http endpoint is a local emulator.
    if (endpoint.protocol === 'http') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { googleAuthLibrary } = require('google-gax') as typeof import('google-gax');
      opts.authClient = new googleAuthLibrary.PassThroughClient({
        transporterOptions: { fetchImplementation: fetch },
      });
    }
    return opts;
  };
  // Deferred requires of the two client files only: the package index loads every Compute client.
  const zonalClient = () => {
    if (!zonal) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require('@google-cloud/compute/build/src/v1/instance_group_managers_client') as {
        InstanceGroupManagersClient: typeof InstanceGroupManagersClient;
      };
      zonal = new mod.InstanceGroupManagersClient(clientOptions());
    }
    return zonal;
  };
  const regionalClient = () => {
    if (!regional) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require('@google-cloud/compute/build/src/v1/region_instance_group_managers_client') as {
        RegionInstanceGroupManagersClient: typeof RegionInstanceGroupManagersClient;
      };
      regional = new mod.RegionInstanceGroupManagersClient(clientOptions());
    }
    return regional;
  };
  // The sweep retries by running again a minute later: one retry here is enough.
  const call = { timeout, maxRetries: 1, autoPaginate: false } as const;

  return {
    async listManagedInstances(group) {
      const out: unknown[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page < 10_000; page++) {
        calls.compute++;
        const base = { project: group.project, instanceGroupManager: group.name, maxResults, pageToken };
        const [items, next] =
          group.scope.kind === 'zone'
            ? await zonalClient().listManagedInstances({ ...base, zone: group.scope.zone }, call)
            : await regionalClient().listManagedInstances({ ...base, region: group.scope.region }, call);
        for (const m of items) out.push(plain(m));
        pageToken = next?.pageToken ?? undefined;
        if (!pageToken) return out;
      }
      throw new Error(`listManagedInstances ${group.key}: too many pages`);
    },
    async isStable(group) {
      calls.compute++;
      const base = { project: group.project, instanceGroupManager: group.name };
      const [igm] =
        group.scope.kind === 'zone'
          ? await zonalClient().get({ ...base, zone: group.scope.zone }, call)
          : await regionalClient().get({ ...base, region: group.scope.region }, call);
      return igm.status?.isStable === true;
    },
    async recreate(group, instance, requestId) {
      calls.compute++;
      const base = { project: group.project, instanceGroupManager: group.name, requestId };
      if (group.scope.kind === 'zone') {
        await zonalClient().recreateInstances(
          {
            ...base,
            zone: group.scope.zone,
            instanceGroupManagersRecreateInstancesRequestResource: { instances: [instance] },
          },
          call,
        );
      } else {
        await regionalClient().recreateInstances(
          {
            ...base,
            region: group.scope.region,
            regionInstanceGroupManagersRecreateRequestResource: { instances: [instance] },
          },
          call,
        );
      }
    },
    async close() {
      await Promise.all([zonal?.close(), regional?.close()]);
    },
  };
}
