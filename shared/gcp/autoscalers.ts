import type { protos } from '@google-cloud/compute';
import { applyMergePatch, canonical, deletes } from './merge-patch';
import { autoscalerSchema, type Autoscaler, type AutoscalerPatch } from './autoscaler-schema';
import type { GcpClients } from './client';
import {
  classifyGoogleError,
  isNotFound,
  OperationFailedError,
  RequestRefusedError,
  ResourceBusyError,
} from './errors';
import { PermanentError, TransientError } from '../errors';

/** A zonal (`zone`) or regional (`region`) autoscaler of a project. */
export interface AutoscalerLocation {
  project: string;
  zone?: string;
  region?: string;
  name: string;
}

export interface AppliedOperation {
  operation: string;
  /** `patch`, or `update` when the merge patch deletes something the client cannot send. */
  method: 'patch' | 'update';
}

/** Zonal and regional autoscalers: read, owner labels, patch. */
export interface AutoscalersPort {
  /** The autoscaler, or null when it does not exist. */
  get(ref: AutoscalerLocation): Promise<Autoscaler | null>;
  /**
   * Labels of the autoscaler's group, for ownership by label: those of the instance template its
   * group creates instances from (Compute groups and autoscalers carry no labels of their own).
   * Empty when the template is not a global one or cannot be found.
   */
  ownerLabels(ref: AutoscalerLocation, autoscaler: Autoscaler): Promise<Record<string, string>>;
  /**
   * Sends the patch with its request id and waits (bounded) for the operation. `current` is the
   * autoscaler the patch was planned from: merged with the patch when an update is needed. Failures
   * are classified (shared/gcp/errors.ts): `wasRefused` tells that nothing changed.
   */
  apply(
    ref: AutoscalerLocation,
    current: Autoscaler,
    patch: AutoscalerPatch,
    requestId: string,
  ): Promise<AppliedOperation>;
}

export interface AutoscalersOptions {
  /** Per-call timeout (default 10 s). */
  timeoutMs?: number;
  /** How long an operation is awaited before the caller retries (default 60 s). */
  operationTimeoutMs?: number;
}

type OperationLike = protos.google.cloud.compute.v1.IOperation;

const where = (ref: AutoscalerLocation) =>
  `${ref.zone !== undefined ? `zones/${ref.zone}` : `regions/${ref.region}`}/autoscalers/${ref.name}`;

/** The zonal form of a call for a zonal autoscaler, the regional form otherwise. */
function byScope<T>(
  ref: AutoscalerLocation,
  zonal: (at: { project: string; zone: string }) => T,
  regional: (at: { project: string; region: string }) => T,
): T {
  return ref.zone !== undefined
    ? zonal({ project: ref.project, zone: ref.zone })
    : regional({ project: ref.project, region: ref.region ?? '' });
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

/** Awaits a zonal or regional operation until DONE or the bound; a failed operation throws. */
async function waitForOperation(
  clients: GcpClients,
  ref: AutoscalerLocation,
  first: OperationLike,
  operationTimeoutMs: number,
): Promise<string> {
  const name = first.name;
  if (!name) throw new TransientError(`${where(ref)}: operation without a name`);
  const deadline = Date.now() + operationTimeoutMs;
  let op = first;
  while (String(op.status) !== 'DONE') {
    const left = deadline - Date.now();
    if (left <= 0)
      throw new TransientError(
        `${where(ref)}: operation ${name} still ${String(op.status ?? 'unknown')} after ${operationTimeoutMs} ms`,
      );
    // `wait` returns when the operation is DONE or after a server-side limit, whichever is first.
    const call = { timeout: Math.min(left, 130_000), maxRetries: 0 };
    // A `wait` that answers early (it may) is not followed by another at once.
    if (op !== first) await new Promise((r) => setTimeout(r, Math.min(500, left)));
    try {
      [op] = await byScope(
        ref,
        async (at) => (await clients.ready('zoneOperations')).wait({ ...at, operation: name }, call),
        async (at) => (await clients.ready('regionOperations')).wait({ ...at, operation: name }, call),
      );
    } catch (err) {
      throw classifyGoogleError(err, `${where(ref)}: wait for ${name}`);
    }
  }
  const errors = op.error?.errors ?? [];
  if (errors.length || op.httpErrorStatusCode) {
    const detail = errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`).join('; ');
    throw new OperationFailedError(
      `${where(ref)}: operation ${name} failed: ${detail || op.httpErrorMessage || op.httpErrorStatusCode}`,
    );
  }
  return name;
}

/** The labels of the global instance template the autoscaler's group creates instances from. */
async function templateLabels(
  clients: GcpClients,
  ref: AutoscalerLocation,
  autoscaler: Autoscaler,
  timeout: number,
): Promise<Record<string, string>> {
  const target = typeof autoscaler.target === 'string' ? autoscaler.target : '';
  const group = /\/instanceGroupManagers\/([a-z][-a-z0-9]{0,62})$/.exec(target)?.[1];
  if (!group) return {};
  const call = { timeout, maxRetries: 2 };
  try {
    const [igm] = await byScope(
      ref,
      async (at) => (await clients.ready('zonalGroups')).get({ ...at, instanceGroupManager: group }, call),
      async (at) => (await clients.ready('regionalGroups')).get({ ...at, instanceGroupManager: group }, call),
    );
    // Only a global template of the same project: anything else is not ours to vouch for.
    const template = new RegExp(
      `(?:^|/)projects/${ref.project}/global/instanceTemplates/([a-z][-a-z0-9]{0,62})$`,
    ).exec(igm.instanceTemplate ?? '')?.[1];
    if (!template) return {};
    const [t] = await (
      await clients.ready('instanceTemplates')
    ).get({ project: ref.project, instanceTemplate: template }, call);
    const labels = t.properties?.labels ?? {};
    return Object.fromEntries(Object.entries(labels).filter(([, v]) => typeof v === 'string'));
  } catch (err) {
    if (isNotFound(err)) return {};
    throw classifyGoogleError(err, `owner labels of ${where(ref)}`);
  }
}

/** Sends a patch, or an update of the merged autoscaler; resolves to the operation as Compute returned it. */
async function send(
  clients: GcpClients,
  ref: AutoscalerLocation,
  method: 'patch' | 'update',
  resource: protos.google.cloud.compute.v1.IAutoscaler,
  requestId: string,
  timeout: number,
): Promise<OperationLike> {
  const call = { timeout, maxRetries: 0 };
  // Typed as a generic long-running operation; for Compute it holds the Compute Operation.
  let op: { latestResponse?: unknown };
  try {
    const body = { autoscaler: ref.name, requestId, autoscalerResource: resource };
    [op] = await byScope(
      ref,
      async (at) => (await clients.ready('zonalAutoscalers'))[method]({ ...at, ...body }, call),
      async (at) => (await clients.ready('regionalAutoscalers'))[method]({ ...at, ...body }, call),
    );
  } catch (err) {
    throw classifyGoogleError(err, `${method} ${where(ref)}`);
  }
  // REST long-running calls resolve to an operation wrapper whose latestResponse is the Operation.
  if (!op.latestResponse) throw new TransientError(`${method} ${where(ref)}: no operation`);
  return op.latestResponse as OperationLike;
}

/**
 * `autoscalers` / `regionAutoscalers` through the official client (REST). Compute v1 autoscalers have
 * no fingerprint: concurrent changes surface as 400 `resourceNotReady` while another operation runs
 * (ResourceBusyError).
 */
export function createAutoscalers(clients: GcpClients, options: AutoscalersOptions = {}): AutoscalersPort {
  const timeout = options.timeoutMs ?? 10_000;
  const operationTimeoutMs = options.operationTimeoutMs ?? 60_000;

  const port: AutoscalersPort = {
    async get(ref) {
      let answer: unknown;
      try {
        const call = { timeout, maxRetries: 2 };
        [answer] = await byScope(
          ref,
          async (at) => (await clients.ready('zonalAutoscalers')).get({ ...at, autoscaler: ref.name }, call),
          async (at) =>
            (await clients.ready('regionalAutoscalers')).get({ ...at, autoscaler: ref.name }, call),
        );
      } catch (err) {
        if (isNotFound(err)) return null;
        throw classifyGoogleError(err, `get ${where(ref)}`);
      }
      const parsed = autoscalerSchema.safeParse(plain(answer));
      if (!parsed.success)
        throw new PermanentError(`get ${where(ref)}: unexpected answer: ${parsed.error.message}`);
      return parsed.data;
    },

    ownerLabels: (ref, autoscaler) => templateLabels(clients, ref, autoscaler, timeout),

    async apply(ref, current, patch, requestId) {
      // The client cannot send a merge patch's nulls (it drops them, or refuses them in maps; an
      // empty value merges nothing): a patch that deletes is sent as an update of the merged
      // autoscaler instead, with the same request id. An update overwrites whatever changed since
      // `current` was read, so the autoscaler is read again first and, if it changed, the caller
      // plans again (as for resourceNotReady). Autoscalers have no fingerprint: a change landing
      // between this read and the update is still overwritten; the window is one round trip.
      const method = deletes(patch.autoscalingPolicy) ? 'update' : 'patch';
      if (method === 'update') {
        const fresh = await port.get(ref);
        if (!fresh) throw new RequestRefusedError(`update ${where(ref)}: the autoscaler is gone`);
        if (canonical(plain(fresh.autoscalingPolicy)) !== canonical(plain(current.autoscalingPolicy)))
          throw new ResourceBusyError(`update ${where(ref)}: the autoscaler changed since it was read`);
      }
      // Without nulls (checked above) the patch is a valid client resource.
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
      const op = await send(clients, ref, method, resource, requestId, timeout);
      return { operation: await waitForOperation(clients, ref, op, operationTimeoutMs), method };
    },
  };
  return port;
}
