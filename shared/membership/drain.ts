import { z } from 'zod';
import type { ConsulClient } from '../consul/client';
import { readJson } from '../consul/kv-json';
import { PermanentError } from '../errors';
import { computeNamePattern, instanceIdPattern } from './names';

/**
 * The drain list in KV: `<prefix><node name>` = `{"instanceId":"<digits>","since":<ms>}`. The
 * HAProxy tier's template drains a server only while its node's `gce-instance-id` equals the key's
 * instance id, so a same-name replacement is never drained. Written through the function's own
 * Consul address only: no token travels to an address read from the catalog, and no agent's
 * anti-entropy touches KV.
 */
export interface DrainList {
  set(node: string, instanceId: string, since: number): Promise<void>;
  /** Deletes the node's key if it still names `instanceId`; a key naming another instance stays. */
  clear(node: string, instanceId: string): Promise<void>;
  /** Deletes the node's key if it is still the entry read (its ModifyIndex); false when it changed. */
  remove(node: string, modifyIndex: number): Promise<boolean>;
}

const drainValueSchema = z.object({ instanceId: z.string(), since: z.number() });

export function createDrainList(
  kv: Pick<ConsulClient['kv'], 'get' | 'set' | 'delete'>,
  prefix: string,
): DrainList {
  const keyOf = (node: string, instanceId?: string) => {
    // Both came validated from the event or Consul; checked again where they become a key.
    if (!computeNamePattern.test(node) || (instanceId !== undefined && !instanceIdPattern.test(instanceId)))
      throw new PermanentError(`refusing a drain key for node ${JSON.stringify(node)}`);
    return `${prefix}${node}`;
  };
  return {
    async set(node, instanceId, since) {
      await kv.set(keyOf(node, instanceId), JSON.stringify({ instanceId, since }));
    },
    async clear(node, instanceId) {
      const key = keyOf(node, instanceId);
      const stored = await readJson(kv, key, drainValueSchema);
      if (stored?.value?.instanceId !== instanceId) return;
      // A lost CAS means the key changed since: a newer drain, left alone.
      await kv.delete(key, { cas: stored.index });
    },
    remove(node, modifyIndex) {
      return kv.delete(keyOf(node), { cas: modifyIndex });
    },
  };
}
