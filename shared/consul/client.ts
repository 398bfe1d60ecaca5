import { z } from 'zod';
import type { ConsulSettings } from '../config';
import { ConsulError, createTransport, type ConsulTransport } from './transport';

export { ConsulError };

const catalogNodeSchema = z.object({
  ID: z.string().optional(),
  Node: z.string(),
  Address: z.string(),
  Meta: z.record(z.string(), z.string()).nullish(),
  ModifyIndex: z.number().int().nonnegative(),
});

const catalogNodeAnswerSchema = z.object({ Node: catalogNodeSchema }).nullable();

const txnResultSchema = z.object({
  Results: z.array(z.object({ KV: z.object({ ModifyIndex: z.number().int() }).nullish() })).nullish(),
  Errors: z.array(z.object({ OpIndex: z.number(), What: z.string() })).nullish(),
});

const kvEntriesSchema = z.array(
  z.object({ Key: z.string(), Value: z.string().nullable(), ModifyIndex: z.number().int() }),
);

const agentSelfSchema = z.object({
  Config: z.object({ NodeName: z.string() }),
  Meta: z.record(z.string(), z.string()).nullish(),
});

const agentChecksSchema = z.record(
  z.string(),
  z.object({ CheckID: z.string(), Notes: z.string().nullish() }),
);

export interface CatalogNode {
  name: string;
  address: string;
  meta: Record<string, string>;
  modifyIndex: number;
}

export interface KvEntry {
  key: string;
  value: string;
  modifyIndex: number;
}

export type DeleteResult = 'deleted' | 'conflict';
export type ForceLeaveResult = 'left' | 'not-a-member';

/** Consul's own check id for node maintenance (`consul maint`, /v1/agent/maintenance). */
export const nodeMaintenanceCheckId = '_node_maintenance';

/** Calls on one specific agent (a node's own), used for agent-local state such as maintenance. */
export interface ConsulAgentApi {
  self(): Promise<{ nodeName: string; meta: Record<string, string> }>;
  checks(): Promise<Record<string, { notes: string }>>;
  setNodeMaintenance(enable: boolean, reason: string): Promise<void>;
}

export interface ConsulApi {
  catalogNode(name: string): Promise<CatalogNode | null>;
  /** Deletes a node (and its services and checks) only if its ModifyIndex is still `modifyIndex`. */
  deleteNodeCas(name: string, modifyIndex: number): Promise<DeleteResult>;
  /** Force-leave with prune; a node that is no longer a gossip member is `not-a-member`. */
  forceLeave(name: string): Promise<ForceLeaveResult>;
  /** Registers a node-level check through the catalog, leaving the node entry untouched. */
  registerNodeCheck(
    node: string,
    address: string,
    check: { id: string; name: string; status: string; notes: string },
  ): Promise<void>;
  deregisterNodeCheck(node: string, checkId: string): Promise<void>;
  kvGet(key: string): Promise<KvEntry | null>;
  /** Compare-and-set (`cas` 0: create only if absent). Returns the new ModifyIndex, or null if the CAS lost. */
  kvPut(key: string, value: string, cas: number): Promise<number | null>;
  kvDelete(key: string, cas: number): Promise<boolean>;
  /** Keys directly under `prefix`, folders ending in `/` (`?keys&separator=/`). */
  kvFolders(prefix: string): Promise<string[]>;
  kvDeleteTree(prefix: string): Promise<void>;
  /** The same settings (token, TLS, timeouts) aimed at another agent, e.g. a node's own. */
  agentAt(host: string, port: number, options?: { timeoutMs?: number; retries?: number }): ConsulAgentApi;
}

const parseJson = <T>(schema: z.ZodType<T>, body: string, what: string): T => {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new ConsulError(`${what}: answer is not JSON`, true);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new ConsulError(`${what}: unexpected answer: ${parsed.error.message}`, false);
  return parsed.data;
};

const enc = encodeURIComponent;
const encKey = (key: string) => key.split('/').map(enc).join('/');

function agentApi(transport: ConsulTransport): ConsulAgentApi {
  return {
    async self() {
      const res = await transport.request('GET', '/v1/agent/self');
      const self = parseJson(agentSelfSchema, res.body, 'agent/self');
      return { nodeName: self.Config.NodeName, meta: self.Meta ?? {} };
    },
    async checks() {
      const res = await transport.request('GET', '/v1/agent/checks');
      const checks = parseJson(agentChecksSchema, res.body, 'agent/checks');
      return Object.fromEntries(Object.entries(checks).map(([id, c]) => [id, { notes: c.Notes ?? '' }]));
    },
    async setNodeMaintenance(enable, reason) {
      await transport.request('PUT', '/v1/agent/maintenance', {
        query: { enable: String(enable), reason: enable ? reason : undefined },
      });
    },
  };
}

export function createConsulClient(settings: ConsulSettings): ConsulApi {
  const transport = createTransport(settings);
  const scheme = new URL(settings.baseUrl).protocol;

  return {
    async catalogNode(name) {
      const res = await transport.request('GET', `/v1/catalog/node/${enc(name)}`, { expect: [404] });
      if (res.status === 404) return null;
      const data = parseJson(catalogNodeAnswerSchema, res.body, 'catalog/node');
      if (!data) return null;
      return {
        name: data.Node.Node,
        address: data.Node.Address,
        meta: data.Node.Meta ?? {},
        modifyIndex: data.Node.ModifyIndex,
      };
    },

    async deleteNodeCas(name, modifyIndex) {
      const ops = [{ Node: { Verb: 'delete-cas', Node: { Node: name, ModifyIndex: modifyIndex } } }];
      const res = await transport.request('PUT', '/v1/txn', { body: ops, expect: [409] });
      if (res.status === 200) return 'deleted';
      const errors = parseJson(txnResultSchema, res.body, 'txn').Errors ?? [];
      // A rolled-back CAS is an answer, not a failure; anything else (e.g. ACL) is a real error.
      if (errors.every((e) => /index is stale/i.test(e.What))) {
        return 'conflict';
      }
      throw new ConsulError(`txn delete-cas ${name}: ${errors.map((e) => e.What).join('; ')}`, false, 409);
    },

    async forceLeave(name) {
      const res = await transport.request('PUT', `/v1/agent/force-leave/${enc(name)}`, {
        query: { prune: true },
        expect: [500],
        // Consul answers once the leave intent was gossiped, up to serf's 5 s broadcast timeout.
        timeoutMs: Math.max(settings.timeoutMs, 8000),
      });
      if (res.status < 300) return 'left';
      // Consul answers 500 "agent: No node found with name '...'" for a node no longer in the pool.
      if (/no node found/i.test(res.body)) return 'not-a-member';
      throw new ConsulError(
        `force-leave ${name}: HTTP 500: ${res.body.trim().slice(0, 300)}`,
        true,
        500,
        res.body,
      );
    },

    async registerNodeCheck(node, address, check) {
      await transport.request('PUT', '/v1/catalog/register', {
        body: {
          Node: node,
          Address: address,
          SkipNodeUpdate: true,
          Check: {
            Node: node,
            CheckID: check.id,
            Name: check.name,
            Status: check.status,
            Notes: check.notes,
          },
        },
      });
    },

    async deregisterNodeCheck(node, checkId) {
      await transport.request('PUT', '/v1/catalog/deregister', { body: { Node: node, CheckID: checkId } });
    },

    async kvGet(key) {
      const res = await transport.request('GET', `/v1/kv/${encKey(key)}`, { expect: [404] });
      if (res.status === 404) return null;
      const [entry] = parseJson(kvEntriesSchema, res.body, 'kv');
      if (!entry) return null;
      return {
        key: entry.Key,
        value: Buffer.from(entry.Value ?? '', 'base64').toString('utf8'),
        modifyIndex: entry.ModifyIndex,
      };
    },

    // Through /v1/txn rather than /v1/kv, because only the transaction answers with the new index.
    async kvPut(key, value, cas) {
      const op = { KV: { Verb: 'cas', Key: key, Value: Buffer.from(value).toString('base64'), Index: cas } };
      const res = await transport.request('PUT', '/v1/txn', { body: [op], expect: [409] });
      const answer = parseJson(txnResultSchema, res.body, 'txn');
      if (res.status === 409) {
        if ((answer.Errors ?? []).every((e) => /index is stale/i.test(e.What))) return null;
        throw new ConsulError(
          `kv cas ${key}: ${(answer.Errors ?? []).map((e) => e.What).join('; ')}`,
          false,
          409,
        );
      }
      const index = answer.Results?.[0]?.KV?.ModifyIndex;
      if (index === undefined) throw new ConsulError(`kv cas ${key}: answer without an index`, true);
      return index;
    },

    async kvDelete(key, cas) {
      const res = await transport.request('DELETE', `/v1/kv/${encKey(key)}`, { query: { cas } });
      return res.body.trim() === 'true';
    },

    async kvFolders(prefix) {
      const res = await transport.request('GET', `/v1/kv/${encKey(prefix)}`, {
        query: { keys: true, separator: '/' },
        expect: [404],
      });
      return res.status === 404 ? [] : parseJson(z.array(z.string()), res.body, 'kv keys');
    },

    async kvDeleteTree(prefix) {
      await transport.request('DELETE', `/v1/kv/${encKey(prefix)}`, { query: { recurse: true } });
    },

    agentAt(host, port, options = {}) {
      return agentApi(
        createTransport({
          ...settings,
          baseUrl: `${scheme}//${host.includes(':') ? `[${host}]` : host}:${port}`,
          timeoutMs: options.timeoutMs ?? settings.timeoutMs,
          retries: options.retries ?? settings.retries,
          keepAlive: false,
        }),
      );
    },
  };
}
