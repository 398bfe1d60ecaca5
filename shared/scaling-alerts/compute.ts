import type { AutoscalersClient } from '@google-cloud/compute/build/src/v1/autoscalers_client';
import type { InstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/instance_group_managers_client';
import type { InstanceTemplatesClient } from '@google-cloud/compute/build/src/v1/instance_templates_client';
import type { RegionInstanceGroupManagersClient } from '@google-cloud/compute/build/src/v1/region_instance_group_managers_client';
import type { RegionAutoscalersClient } from '@google-cloud/compute/build/src/v1/region_autoscalers_client';
import type { RegionOperationsClient } from '@google-cloud/compute/build/src/v1/region_operations_client';
import type { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client';
import type { protos } from '@google-cloud/compute';
import type { ComputeEndpoint } from '../config';
import { applyMergePatch, autoscalerSchema, type Autoscaler, type Plan } from './plan';
import type { AutoscalerRef } from './rules';

/** An autoscaler with the project resolved. */
export type ScopedAutoscalerRef = AutoscalerRef & { project: string };

export interface AppliedOperation {
  operation: string;
  /** `patch`, or `update` when the merge patch deletes something the client cannot send. */
  method: 'patch' | 'update';
}

/** Zonal and regional autoscalers, as scalingAlerts reads and changes them. */
export interface AutoscalersPort {
  /** The autoscaler, or null when it does not exist. */
  get(ref: ScopedAutoscalerRef): Promise<Autoscaler | null>;
  /**
   * Labels of the autoscaler's group, for ownership by label: those of the instance template its
   * group creates instances from (Compute groups and autoscalers carry no labels of their own).
   * Empty when the template is not a global one or cannot be found.
   */
  ownerLabels(ref: ScopedAutoscalerRef, autoscaler: Autoscaler): Promise<Record<string, string>>;
  /**
   * Sends the plan's patch with its request id and waits (bounded) for the operation. `current` is
   * the autoscaler the plan was made from: merged with the patch when an update is needed.
   */
  apply(
    ref: ScopedAutoscalerRef,
    current: Autoscaler,
    patch: NonNullable<Plan['patch']>,
    requestId: string,
  ): Promise<AppliedOperation>;
}

/**
 * A Compute failure. `transient`: worth a redelivery (5xx, timeouts, an operation still running at
 * the bound). Otherwise permanent (a 4xx other than resourceNotReady, a failed operation).
 */
export class AutoscalerError extends Error {
  override name = 'AutoscalerError';
  constructor(
    message: string,
    readonly transient: boolean,
    /** The request was refused (4xx) before any operation started: nothing was changed. */
    readonly refused = false,
  ) {
    super(message);
  }
}

/** 400 `resourceNotReady`: another operation on the autoscaler still runs. Read again and re-plan. */
export class AutoscalerBusyError extends AutoscalerError {
  override name = 'AutoscalerBusyError';
  constructor(message: string) {
    super(message, true, true);
  }
}

interface GoogleErrorInfo {
  status?: number;
  reasons: string[];
  message: string;
}

/** The HTTP status and Google's error reasons from what the REST client throws. */
export function googleErrorInfo(err: unknown): GoogleErrorInfo {
  const e = err as { code?: unknown; status?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  let status = typeof e.code === 'number' ? e.code : typeof e.status === 'number' ? e.status : undefined;
  let reasons: string[] = [];
  try {
    const body = JSON.parse(message) as { error?: { code?: unknown; errors?: { reason?: unknown }[] } };
    if (typeof body.error?.code === 'number') status = body.error.code;
    reasons = (body.error?.errors ?? []).map((x) => (typeof x.reason === 'string' ? x.reason : ''));
  } catch {
    if (/\bresourceNotReady\b/.test(message)) reasons = ['resourceNotReady'];
  }
  // Decoded gRPC codes: 5 NOT_FOUND, 4 DEADLINE_EXCEEDED, 14 UNAVAILABLE.
  if (status === 5) status = 404;
  return { status, reasons, message };
}

const transientStatus = (status: number | undefined) =>
  status === undefined || status === 429 || status >= 500 || status === 4 || status === 14;

function classify(err: unknown, what: string): AutoscalerError {
  if (err instanceof AutoscalerError) return err;
  const info = googleErrorInfo(err);
  const text = `${what}: ${info.status ?? 'error'} ${info.message.slice(0, 500)}`;
  if (info.reasons.includes('resourceNotReady')) return new AutoscalerBusyError(text);
  const refused = info.status !== undefined && info.status >= 400 && info.status < 500;
  return new AutoscalerError(text, transientStatus(info.status), refused);
}

/** Client output as plain data: no protobuf oneof markers (`_field`), no nulls. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.startsWith('_') || v === null || v === undefined) continue;
    out[k] = plain(v);
  }
  return out;
}

/** True when a merge patch deletes something (a `null`): the client drops or refuses nulls. */
function deletes(patch: unknown): boolean {
  if (patch === null) return true;
  if (typeof patch !== 'object' || Array.isArray(patch)) return false;
  return Object.values(patch as Record<string, unknown>).some(deletes);
}

interface Clients {
  zonal: AutoscalersClient;
  regional: RegionAutoscalersClient;
  zoneOps: ZoneOperationsClient;
  regionOps: RegionOperationsClient;
  igms: InstanceGroupManagersClient;
  regionIgms: RegionInstanceGroupManagersClient;
  templates: InstanceTemplatesClient;
}

function createClients(endpoint: ComputeEndpoint): Clients {
  // Deferred, per-client requires: the package index loads every Compute client (seconds of cold start).
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { AutoscalersClient } = require('@google-cloud/compute/build/src/v1/autoscalers_client') as {
    AutoscalersClient: typeof import('@google-cloud/compute/build/src/v1/autoscalers_client').AutoscalersClient;
  };
  const { RegionAutoscalersClient } =
    require('@google-cloud/compute/build/src/v1/region_autoscalers_client') as typeof import('@google-cloud/compute/build/src/v1/region_autoscalers_client');
  const { ZoneOperationsClient } =
    require('@google-cloud/compute/build/src/v1/zone_operations_client') as typeof import('@google-cloud/compute/build/src/v1/zone_operations_client');
  const { RegionOperationsClient } =
    require('@google-cloud/compute/build/src/v1/region_operations_client') as typeof import('@google-cloud/compute/build/src/v1/region_operations_client');
  const options: ConstructorParameters<typeof AutoscalersClient>[0] = { ...endpoint, fallback: true };
  if (endpoint.protocol === 'http') {
    // Credentials never travel over plain http: an http endpoint is a local emulator.
    const { googleAuthLibrary } = require('google-gax') as typeof import('google-gax');
    options.authClient = new googleAuthLibrary.PassThroughClient({
      transporterOptions: { fetchImplementation: fetch },
    });
  }
  const { InstanceGroupManagersClient } =
    require('@google-cloud/compute/build/src/v1/instance_group_managers_client') as typeof import('@google-cloud/compute/build/src/v1/instance_group_managers_client');
  const { RegionInstanceGroupManagersClient } =
    require('@google-cloud/compute/build/src/v1/region_instance_group_managers_client') as typeof import('@google-cloud/compute/build/src/v1/region_instance_group_managers_client');
  const { InstanceTemplatesClient } =
    require('@google-cloud/compute/build/src/v1/instance_templates_client') as typeof import('@google-cloud/compute/build/src/v1/instance_templates_client');
  /* eslint-enable @typescript-eslint/no-require-imports */
  return {
    zonal: new AutoscalersClient(options),
    regional: new RegionAutoscalersClient(options),
    zoneOps: new ZoneOperationsClient(options),
    regionOps: new RegionOperationsClient(options),
    igms: new InstanceGroupManagersClient(options),
    regionIgms: new RegionInstanceGroupManagersClient(options),
    templates: new InstanceTemplatesClient(options),
  };
}

export interface AutoscalersPortOptions {
  /** Per-call timeout (default 10 s). */
  timeoutMs?: number;
  /** How long an operation is awaited before the delivery is retried (default 60 s). */
  operationTimeoutMs?: number;
}

type OperationLike = protos.google.cloud.compute.v1.IOperation;

/**
 * `autoscalers` / `regionAutoscalers` through the official client (REST), pointed at an emulator by
 * the endpoint. Compute v1 autoscalers have no fingerprint: concurrent changes surface as 400
 * `resourceNotReady` while another operation runs (AutoscalerBusyError).
 */
export function createAutoscalersPort(
  endpoint: ComputeEndpoint,
  options: AutoscalersPortOptions = {},
): AutoscalersPort & { close(): Promise<void> } {
  let clients: Clients | undefined;
  const c = () => (clients ??= createClients(endpoint));
  const timeout = options.timeoutMs ?? 10_000;
  const operationTimeoutMs = options.operationTimeoutMs ?? 60_000;
  const where = (ref: ScopedAutoscalerRef) =>
    `${ref.zone !== undefined ? `zones/${ref.zone}` : `regions/${ref.region}`}/autoscalers/${ref.name}`;

  async function wait(ref: ScopedAutoscalerRef, first: OperationLike): Promise<string> {
    const name = first.name;
    if (!name) throw new AutoscalerError(`${where(ref)}: operation without a name`, true);
    const deadline = Date.now() + operationTimeoutMs;
    let op = first;
    while (String(op.status) !== 'DONE') {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new AutoscalerError(
          `${where(ref)}: operation ${name} still ${String(op.status ?? 'unknown')} after ${operationTimeoutMs} ms`,
          true,
        );
      // `wait` returns when the operation is DONE or after a server-side limit, whichever is first.
      const call = { timeout: Math.min(left, 130_000), maxRetries: 0 };
      // A `wait` that answers early (it may) is not followed by another at once.
      if (op !== first) await new Promise((r) => setTimeout(r, Math.min(500, left)));
      try {
        [op] =
          ref.zone !== undefined
            ? await c().zoneOps.wait({ project: ref.project, zone: ref.zone, operation: name }, call)
            : await c().regionOps.wait({ project: ref.project, region: ref.region, operation: name }, call);
      } catch (err) {
        throw classify(err, `${where(ref)}: wait for ${name}`);
      }
    }
    const errors = op.error?.errors ?? [];
    if (errors.length || op.httpErrorStatusCode) {
      const detail = errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`).join('; ');
      throw new AutoscalerError(
        `${where(ref)}: operation ${name} failed: ${detail || op.httpErrorMessage || op.httpErrorStatusCode}`,
        false,
      );
    }
    return name;
  }

  const port: AutoscalersPort & { close(): Promise<void> } = {
    async get(ref) {
      try {
        const [a] =
          ref.zone !== undefined
            ? await c().zonal.get(
                { project: ref.project, zone: ref.zone, autoscaler: ref.name },
                { timeout, maxRetries: 2 },
              )
            : await c().regional.get(
                { project: ref.project, region: ref.region, autoscaler: ref.name },
                { timeout, maxRetries: 2 },
              );
        const parsed = autoscalerSchema.safeParse(plain(a));
        if (!parsed.success)
          throw new AutoscalerError(`${where(ref)}: unexpected answer: ${parsed.error.message}`, false);
        return parsed.data;
      } catch (err) {
        if (googleErrorInfo(err).status === 404) return null;
        throw classify(err, `get ${where(ref)}`);
      }
    },

    async ownerLabels(ref, autoscaler) {
      const target = typeof autoscaler.target === 'string' ? autoscaler.target : '';
      const group = /\/instanceGroupManagers\/([a-z][-a-z0-9]{0,62})$/.exec(target)?.[1];
      if (!group) return {};
      const call = { timeout, maxRetries: 2 };
      try {
        const [igm] =
          ref.zone !== undefined
            ? await c().igms.get({ project: ref.project, zone: ref.zone, instanceGroupManager: group }, call)
            : await c().regionIgms.get(
                { project: ref.project, region: ref.region, instanceGroupManager: group },
                call,
              );
        // Only a global template of the same project: anything else is not ours to vouch for.
        const template = new RegExp(
          `(?:^|/)projects/${ref.project}/global/instanceTemplates/([a-z][-a-z0-9]{0,62})$`,
        ).exec(igm.instanceTemplate ?? '')?.[1];
        if (!template) return {};
        const [t] = await c().templates.get({ project: ref.project, instanceTemplate: template }, call);
        const labels = t.properties?.labels ?? {};
        return Object.fromEntries(Object.entries(labels).filter(([, v]) => typeof v === 'string'));
      } catch (err) {
        if (googleErrorInfo(err).status === 404) return {};
        throw classify(err, `owner labels of ${where(ref)}`);
      }
    },

    async apply(ref, current, patch, requestId) {
      const call = { timeout, maxRetries: 0 };
      // The client cannot send a merge patch's nulls (it drops them, or refuses them in maps; an
      // empty value merges nothing): a patch that deletes is sent as an update of the merged
      // autoscaler instead, with the same request id. An update overwrites whatever changed since
      // `current` was read, so the autoscaler is read again first and, if it changed, the plan is
      // made again (as for resourceNotReady). Autoscalers have no fingerprint: a change landing
      // between this read and the update is still overwritten; the window is one round trip.
      const method = deletes(patch.autoscalingPolicy) ? 'update' : 'patch';
      if (method === 'update') {
        const fresh = await port.get(ref);
        if (!fresh) throw new AutoscalerError(`update ${where(ref)}: the autoscaler is gone`, false, true);
        if (canonical(plain(fresh.autoscalingPolicy)) !== canonical(plain(current.autoscalingPolicy)))
          throw new AutoscalerBusyError(`update ${where(ref)}: the autoscaler changed since it was read`);
      }
      // Without nulls (checked above) the plan's body is a valid client resource.
      const resource = (
        method === 'patch'
          ? patch
          : {
              name: current.name,
              ...(typeof current.target === 'string' ? { target: current.target } : {}),
              ...(typeof current.description === 'string' ? { description: current.description } : {}),
              autoscalingPolicy: plain(
                applyMergePatch(current.autoscalingPolicy, patch.autoscalingPolicy),
              ) as Record<string, unknown>,
            }
      ) as protos.google.cloud.compute.v1.IAutoscaler;
      // Typed as a generic long-running operation; for Compute it holds the Compute Operation.
      let op: { latestResponse?: unknown };
      try {
        if (ref.zone !== undefined) {
          const req = { project: ref.project, zone: ref.zone, autoscaler: ref.name, requestId };
          [op] =
            method === 'patch'
              ? await c().zonal.patch({ ...req, autoscalerResource: resource }, call)
              : await c().zonal.update({ ...req, autoscalerResource: resource }, call);
        } else {
          const req = { project: ref.project, region: ref.region, autoscaler: ref.name, requestId };
          [op] =
            method === 'patch'
              ? await c().regional.patch({ ...req, autoscalerResource: resource }, call)
              : await c().regional.update({ ...req, autoscalerResource: resource }, call);
        }
      } catch (err) {
        throw classify(err, `${method} ${where(ref)}`);
      }
      // REST long-running calls resolve to an operation wrapper whose latestResponse is the Operation.
      if (!op.latestResponse) throw new AutoscalerError(`${method} ${where(ref)}: no operation`, true);
      return { operation: await wait(ref, op.latestResponse as OperationLike), method };
    },

    async close() {
      if (!clients) return;
      const all = clients;
      clients = undefined;
      await Promise.all([
        all.zonal.close(),
        all.regional.close(),
        all.zoneOps.close(),
        all.regionOps.close(),
      ]);
    },
  };
  return port;
}

/** JSON with sorted keys: the same policy read twice compares equal whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}
