import { z } from 'zod';

import { cachedAsync } from './cache';

/**
 * Reads this instance's identity from the GCE metadata server. The host comes from
 * GCE_METADATA_HOST as Google's client libraries do, so the local stand-in needs no code path.
 */

const recursiveInstanceSchema = z.object({
  name: z.string().min(1),
  hostname: z.string(),
  zone: z.string().regex(/^projects\/[^/]+\/zones\/[^/]+$/),
  machineType: z.string(),
  tags: z.array(z.string()).default([]),
  attributes: z.record(z.string(), z.string()).default({}),
  networkInterfaces: z.array(z.object({ ip: z.string() })).min(1),
});

export interface InstanceIdentity {
  id: string;
  name: string;
  hostname: string;
  /** Short zone, e.g. `us-central1-f`. */
  zone: string;
  project: string;
  internalIp: string;
  /** Short machine type, e.g. `e2-small`. */
  machineType: string;
  tags: string[];
  /** MIG name from the `created-by` attribute, empty when the instance is not in a group. */
  instanceGroup: string;
}

export const lastSegment = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

/** Pure: turns the metadata server's recursive answers into the identity the apps report. */
export function parseIdentity(instance: unknown, id: string, projectId: string): InstanceIdentity {
  const parsed = recursiveInstanceSchema.parse(instance);
  const createdBy = parsed.attributes['created-by'] ?? '';
  return {
    id: z.string().regex(/^\d+$/).parse(id.trim()),
    name: parsed.name,
    hostname: parsed.hostname,
    zone: lastSegment(parsed.zone),
    project: z.string().min(1).parse(projectId.trim()),
    internalIp: parsed.networkInterfaces[0]!.ip,
    machineType: lastSegment(parsed.machineType),
    tags: parsed.tags,
    instanceGroup: createdBy.includes('/instanceGroupManagers/') ? lastSegment(createdBy) : '',
  };
}

export interface MetadataClientOptions {
  /** host[:port]; defaults to GCE_METADATA_HOST, then `metadata.google.internal`. */
  host?: string;
  /** How long an answer is reused; identity rarely changes, the server should not be hammered. */
  cacheMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface MetadataClient {
  identity(): Promise<InstanceIdentity>;
}

export function metadataHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.GCE_METADATA_HOST?.trim() || 'metadata.google.internal';
}

export function createMetadataClient(options: MetadataClientOptions = {}): MetadataClient {
  const base = `http://${options.host ?? metadataHost()}/computeMetadata/v1`;
  const cacheMs = options.cacheMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const now = options.now ?? Date.now;

  const get = async (path: string): Promise<string> => {
    const res = await fetch(`${base}/${path}`, {
      headers: { 'Metadata-Flavor': 'Google' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`metadata ${path}: HTTP ${res.status}`);
    if (res.headers.get('metadata-flavor') !== 'Google')
      throw new Error(`metadata ${path}: not a metadata server`);
    return res.text();
  };

  const load = async (): Promise<InstanceIdentity> => {
    // The id is read as text: in the recursive JSON it is a number beyond 2^53.
    const [instance, id, project] = await Promise.all([
      get('instance/?recursive=true&alt=json'),
      get('instance/id'),
      get('project/project-id'),
    ]);
    return parseIdentity(JSON.parse(instance) as unknown, id, project);
  };

  return { identity: cachedAsync(load, cacheMs, now) };
}
