/**
 * The project's one way to talk to Consul, on the `consul` npm package (node-consul). What this
 * layer adds around the package: an overall deadline per call, a bounded retry of transient
 * failures with jittered backoff, a cap on the size of an answer, TLS from the settings, answers
 * validated with zod (every value from Consul is untrusted), and errors classified as
 * TransientError or PermanentError (shared/errors.ts). The token travels in the X-Consul-Token
 * header only; it never appears in a URL or an error message, and the package's request log events
 * (which carry the headers) are never listened to.
 *
 * The package lacks a few endpoints; those go through the package's own HTTP client (same agent,
 * TLS, token and timeouts) and are marked "not in the package" below.
 */
import type http from 'node:http';
import { z } from 'zod';
import { PermanentError, TransientError } from '../errors';
import { bodyText, connect, isResponseError, type PapiResponse, type PassThrough } from './package';
import {
  agentChecksSchema,
  agentSelfSchema,
  autopilotHealthSchema,
  catalogNodeAnswerSchema,
  catalogNodesSchema,
  healthChecksSchema,
  kvEntriesSchema,
  membersSchema,
  serviceHealthSchema,
  txnAnswerSchema,
} from './schemas';
import type { BlockingOptions, CallOptions, ConsulClient, ConsulClientSettings } from './types';

export type * from './types';

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new PermanentError(`${what}: unexpected answer: ${parsed.error.message}`);
  return parsed.data;
}

/** An answer papi left undecoded (no JSON content type), decoded; anything else as it is. */
const jsonText = (body: unknown): unknown => {
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) return body;
  try {
    return JSON.parse(bodyText(body)) as unknown;
  } catch {
    return body;
  }
};

const indexOf = (res: { headers: http.IncomingHttpHeaders }): number => {
  const value = Number(res.headers['x-consul-index']);
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
};

export function createConsulClient(settings: ConsulClientSettings): ConsulClient {
  const { consul, run, raw, withHeaders } = connect(settings);
  const base = new URL(settings.baseUrl);

  const kvCas = async (key: string, value: string, index: number): Promise<number | null> => {
    const answer = await client.txn([
      { KV: { Verb: 'cas', Key: key, Value: Buffer.from(value).toString('base64'), Index: index } },
    ]);
    if (!answer.ok) {
      if (answer.errors.every((e) => /index is stale/i.test(e.What))) return null;
      throw new PermanentError(`kv cas ${key}: ${answer.errors.map((e) => e.What).join('; ')}`, {
        status: 409,
      });
    }
    const modifyIndex = answer.results[0]?.KV?.ModifyIndex;
    if (modifyIndex === undefined) throw new TransientError(`kv cas ${key}: answer without an index`);
    return modifyIndex;
  };

  const kvGet = async (key: string, pass: PassThrough & { index?: string; wait?: string }) => {
    const ctx = withHeaders();
    const options = { key, ...pass, ctx };
    const [res, entries] = (await consul.kv.get(options)) as [PapiResponse, unknown];
    // The package decodes Value from base64 already.
    const entry = entries === undefined ? undefined : parse(kvEntriesSchema.element, entries, 'kv');
    return {
      index: indexOf(res),
      value: entry ? { key: entry.Key, value: entry.Value ?? '', modifyIndex: entry.ModifyIndex } : null,
    };
  };

  const client: ConsulClient = {
    baseUrl: `${base.protocol}//${base.host}`,
    kv: {
      get: (key) => run(`kv get ${key}`, async (pass) => (await kvGet(key, pass)).value),
      list: (prefix) =>
        run(`kv list ${prefix}`, async (pass) => {
          // The package decodes Value from base64 and answers undefined for a 404 (nothing under it).
          const entries: unknown = await consul.kv.get({ key: prefix, recurse: true, ...pass });
          return parse(kvEntriesSchema, entries ?? [], 'kv list').map((e) => ({
            key: e.Key,
            value: e.Value ?? '',
            modifyIndex: e.ModifyIndex,
          }));
        }),
      keys: (prefix, options = {}) =>
        run(`kv keys ${prefix}`, async (pass) => {
          try {
            const keys = await consul.kv.keys({ key: prefix, separator: options.separator, ...pass });
            return parse(z.array(z.string()), keys ?? [], 'kv keys');
          } catch (err) {
            if (isResponseError(err) && err.statusCode === 404) return [];
            throw err;
          }
        }),
      set: (key, value) =>
        run(`kv set ${key}`, async (pass) => {
          await consul.kv.set({ key, value, ...pass });
        }),
      cas: (key, value, index) => kvCas(key, value, index),
      delete: (key, options = {}) =>
        run(`kv delete ${key}`, async (pass) => {
          const answer = await consul.kv.del({
            key,
            ...(options.cas === undefined ? {} : { cas: options.cas }),
            ...pass,
          });
          return answer === true;
        }),
      deleteTree: (prefix) =>
        run(`kv delete-tree ${prefix}`, async (pass) => {
          await consul.kv.del({ key: prefix, recurse: true, ...pass });
        }),
      acquire: (key, value, session) =>
        run(
          `kv acquire ${key}`,
          async (pass) => (await consul.kv.set({ key, value, acquire: session, ...pass })) === true,
        ),
      release: (key, value, session) =>
        run(
          `kv release ${key}`,
          async (pass) => (await consul.kv.set({ key, value, release: session, ...pass })) === true,
        ),
    },

    txn: (ops) =>
      run('txn', async (pass) => {
        try {
          const answer = await consul.transaction.create(ops, { ...pass });
          const parsed = parse(txnAnswerSchema, answer, 'txn');
          return { ok: true, results: parsed.Results ?? [] };
        } catch (err) {
          if (isResponseError(err) && err.statusCode === 409) {
            const parsed = parse(txnAnswerSchema, err.response.body, 'txn');
            return { ok: false, errors: parsed.Errors ?? [] };
          }
          throw err;
        }
      }),

    catalog: {
      node: (name) =>
        run(`catalog node ${name}`, async (pass) => {
          try {
            const answer = await consul.catalog.node.services({ node: name, ...pass });
            const data = parse(catalogNodeAnswerSchema, answer ?? null, 'catalog/node');
            if (!data) return null;
            return {
              name: data.Node.Node,
              address: data.Node.Address,
              meta: data.Node.Meta ?? {},
              modifyIndex: data.Node.ModifyIndex,
              services: Object.values(data.Services ?? {}).map((s) => ({
                id: s.ID,
                service: s.Service,
                port: s.Port,
                tags: s.Tags ?? [],
                meta: s.Meta ?? {},
              })),
            };
          } catch (err) {
            if (isResponseError(err) && err.statusCode === 404) return null;
            throw err;
          }
        }),
      nodes: (options = {}) =>
        run('catalog nodes', async (pass) => {
          const nodeMeta = Object.entries(options.nodeMeta ?? {}).map(([k, v]) => `${k}:${v}`);
          const answer = await consul.catalog.node.list({
            ...pass,
            ...(nodeMeta.length ? { 'node-meta': nodeMeta } : {}),
          });
          return parse(catalogNodesSchema, answer ?? [], 'catalog/nodes').map((n) => ({
            name: n.Node,
            address: n.Address,
            meta: n.Meta ?? {},
            modifyIndex: n.ModifyIndex,
          }));
        }),
      register: (r) =>
        run(`catalog register ${r.node}`, async (pass) => {
          await consul.catalog.register({
            node: r.node,
            address: r.address,
            ...(r.nodeMeta ? { nodemeta: r.nodeMeta } : {}),
            ...(r.skipNodeUpdate ? { skipnodeupdate: true } : {}),
            ...(r.service ? { service: r.service } : {}),
            ...(r.check
              ? {
                  check: {
                    node: r.node,
                    checkid: r.check.checkId,
                    name: r.check.name,
                    status: r.check.status,
                    notes: r.check.notes ?? '',
                    ...(r.check.serviceId ? { serviceid: r.check.serviceId } : {}),
                  },
                }
              : {}),
            ...pass,
          });
        }),
      deregister: (t) =>
        run(`catalog deregister ${t.node}`, async (pass) => {
          await consul.catalog.deregister({
            node: t.node,
            ...(t.checkId ? { checkid: t.checkId } : {}),
            ...(t.serviceId ? { serviceid: t.serviceId } : {}),
            ...pass,
          });
        }),
      deleteNodeCas: async (name, modifyIndex) => {
        const answer = await client.txn([
          { Node: { Verb: 'delete-cas', Node: { Node: name, ModifyIndex: modifyIndex } } },
        ]);
        if (answer.ok) return 'deleted';
        // A rolled-back CAS is an answer, not a failure; anything else (e.g. ACL) is a real error.
        if (answer.errors.every((e) => /index is stale/i.test(e.What))) return 'conflict';
        throw new PermanentError(`txn delete-cas ${name}: ${answer.errors.map((e) => e.What).join('; ')}`, {
          status: 409,
        });
      },
    },

    health: {
      node: (name) =>
        run(`health node ${name}`, async (pass) =>
          parse(healthChecksSchema, (await consul.health.node({ node: name, ...pass })) ?? [], 'health/node'),
        ),
      service: (name, options = {}) =>
        run(`health service ${name}`, async (pass) =>
          parse(
            serviceHealthSchema,
            (await consul.health.service({
              service: name,
              ...(options.passing ? { passing: true } : {}),
              ...(options.tag ? { tag: options.tag } : {}),
              ...pass,
            })) ?? [],
            'health/service',
          ),
        ),
      state: (state = 'any') =>
        run(`health state ${state}`, async (pass) =>
          parse(healthChecksSchema, (await consul.health.state({ state, ...pass })) ?? [], 'health/state'),
        ),
    },

    session: {
      create: (options = {}) =>
        run('session create', async (pass) => {
          const answer = await consul.session.create({
            ...(options.name ? { name: options.name } : {}),
            ...(options.ttl ? { ttl: options.ttl } : {}),
            ...(options.behavior ? { behavior: options.behavior } : {}),
            ...(options.lockDelay ? { lockdelay: options.lockDelay } : {}),
            ...pass,
          });
          return parse(z.object({ ID: z.string() }), answer, 'session/create').ID;
        }),
      destroy: (id) =>
        run(`session destroy ${id}`, async (pass) => {
          await consul.session.destroy({ id, ...pass });
        }),
      renew: (id) =>
        run(`session renew ${id}`, async (pass) => {
          await consul.session.renew({ id, ...pass });
        }),
    },

    agent: {
      self: () =>
        run('agent self', async (pass) => {
          const self = parse(agentSelfSchema, await consul.agent.self(pass), 'agent/self');
          return {
            nodeName: self.Config.NodeName,
            nodeId: self.Config.NodeID ?? '',
            datacenter: self.Config.Datacenter ?? '',
            meta: self.Meta ?? {},
            debugConfig: self.DebugConfig ?? {},
          };
        }),
      members: () =>
        run('agent members', async (pass) =>
          parse(membersSchema, (await consul.agent.members(pass)) ?? [], 'agent/members').map((m) => ({
            name: m.Name,
            address: m.Addr,
            status: m.Status,
            tags: m.Tags ?? {},
          })),
        ),
      checks: () =>
        run('agent checks', async (pass) => {
          const checks = parse(agentChecksSchema, (await consul.agent.checks(pass)) ?? {}, 'agent/checks');
          return Object.fromEntries(
            Object.entries(checks).map(([id, c]) => [
              id,
              { id: c.CheckID, status: c.Status ?? '', notes: c.Notes ?? '' },
            ]),
          );
        }),
      maintenance: (enable, reason) =>
        run('agent maintenance', async (pass) => {
          await consul.agent.maintenance({ enable, ...(enable && reason ? { reason } : {}), ...pass });
        }),
      serviceMaintenance: (serviceId, enable, reason) =>
        run(`agent service maintenance ${serviceId}`, async (pass) => {
          await consul.agent.service.maintenance({
            id: serviceId,
            enable,
            ...(enable && reason ? { reason } : {}),
            ...pass,
          });
        }),
      registerService: (d) =>
        run(`agent service register ${d.name}`, async (pass) => {
          await consul.agent.service.register({
            name: d.name,
            ...(d.id ? { id: d.id } : {}),
            ...(d.port === undefined ? {} : { port: d.port }),
            ...(d.address ? { address: d.address } : {}),
            ...(d.tags ? { tags: d.tags } : {}),
            ...(d.meta ? { meta: d.meta } : {}),
            ...pass,
          });
        }),
      // Not in the package: its agent.forceLeave drops `prune`, without which the leader registers
      // a failed gossip member again. Consul answers once the leave intent was gossiped, up to
      // serf's 5 s broadcast timeout, hence the longer timeout.
      forceLeave: (name) =>
        run(
          `agent force-leave ${name}`,
          async (pass) => {
            try {
              await raw(
                '_put',
                {
                  name: 'agent.forceLeave',
                  path: '/agent/force-leave/{node}',
                  params: { node: name },
                  query: { prune: 1 },
                },
                pass,
              );
              return 'left';
            } catch (err) {
              // Consul answers 500 "agent: No node found with name '...'" for a node no longer in the pool.
              if (isResponseError(err) && /no node found/i.test(bodyText(err.response.body)))
                return 'not-a-member';
              throw err;
            }
          },
          { timeoutMs: Math.max(settings.timeoutMs, 8000) },
        ),
    },

    status: {
      leader: () =>
        run('status leader', async (pass) =>
          parse(z.string(), (await consul.status.leader(pass)) ?? '', 'status/leader'),
        ),
      peers: () =>
        run('status peers', async (pass) =>
          parse(z.array(z.string()), (await consul.status.peers(pass)) ?? [], 'status/peers'),
        ),
    },

    // Not in the package, which has no operator endpoints.
    operator: {
      autopilotHealth: () =>
        run('operator autopilot health', async (pass) => {
          let body: unknown;
          try {
            body = (
              await raw(
                '_get',
                { name: 'operator.autopilot.health', path: '/operator/autopilot/health' },
                pass,
              )
            ).body;
          } catch (err) {
            // 429 is Consul's way to say "unhealthy"; the body is the same report, sent without a
            // JSON content type, so it arrives as text.
            if (!isResponseError(err) || err.statusCode !== 429) throw err;
            body = jsonText(err.response.body);
          }
          const health = parse(autopilotHealthSchema, body, 'operator/autopilot/health');
          return {
            healthy: health.Healthy,
            failureTolerance: health.FailureTolerance,
            servers: (health.Servers ?? []).map((s) => ({
              id: s.ID,
              name: s.Name,
              address: s.Address,
              leader: s.Leader,
              voter: s.Voter,
              healthy: s.Healthy,
            })),
          };
        }),
    },

    // Not in the package: it has only the legacy ACL API, which Consul removed in 1.11.
    acl: {
      createPolicy: (name, rules) =>
        run(`acl policy ${name}`, async (pass) => {
          const res = await raw(
            '_put',
            {
              name: 'acl.policy.create',
              path: '/acl/policy',
              type: 'json',
              body: { Name: name, Rules: rules },
            },
            pass,
          );
          return parse(z.object({ ID: z.string() }), res.body, 'acl/policy').ID;
        }),
      createToken: (options) =>
        run('acl token', async (pass) => {
          const body = {
            Policies: options.policies.map((p) => ({ Name: p })),
            ...(options.secretId ? { SecretID: options.secretId } : {}),
            ...(options.description ? { Description: options.description } : {}),
          };
          const res = await raw(
            '_put',
            { name: 'acl.token.create', path: '/acl/token', type: 'json', body },
            pass,
          );
          return parse(z.object({ SecretID: z.string() }), res.body, 'acl/token').SecretID;
        }),
      self: () =>
        run('acl token self', async (pass) => {
          const res = await raw('_get', { name: 'acl.token.self', path: '/acl/token/self' }, pass);
          return parse(z.object({ AccessorID: z.string() }), res.body, 'acl/token/self').AccessorID;
        }),
    },

    blocking: {
      kv: (key, options = {}) =>
        run(
          `kv watch ${key}`,
          (pass) => kvGet(key, { ...pass, ...blocking(options) }),
          blockingCall(options),
        ),
      catalogNodes: (options = {}) =>
        run(
          'catalog nodes watch',
          async (pass) => {
            const [res, answer] = (await consul.catalog.node.list({
              ...pass,
              ...blocking(options),
              ctx: withHeaders(),
            })) as [PapiResponse, unknown];
            const value = parse(catalogNodesSchema, answer ?? [], 'catalog/nodes').map((n) => ({
              name: n.Node,
              address: n.Address,
              meta: n.Meta ?? {},
              modifyIndex: n.ModifyIndex,
            }));
            return { value, index: indexOf(res) };
          },
          blockingCall(options),
        ),
      healthService: (name, options = {}) =>
        run(
          `health service watch ${name}`,
          async (pass) => {
            const [res, answer] = (await consul.health.service({
              service: name,
              ...(options.passing ? { passing: true } : {}),
              ...pass,
              ...blocking(options),
              ctx: withHeaders(),
            })) as [PapiResponse, unknown];
            return { value: parse(serviceHealthSchema, answer ?? [], 'health/service'), index: indexOf(res) };
          },
          blockingCall(options),
        ),
      healthState: (options = {}) =>
        run(
          'health state watch',
          async (pass) => {
            const [res, answer] = (await consul.health.state({
              state: 'any',
              ...pass,
              ...blocking(options),
              ctx: withHeaders(),
            })) as [PapiResponse, unknown];
            return { value: parse(healthChecksSchema, answer ?? [], 'health/state'), index: indexOf(res) };
          },
          blockingCall(options),
        ),
    },

    at(target) {
      return createConsulClient({
        ...settings,
        baseUrl: target.host
          ? `${base.protocol}//${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port ?? base.port}`
          : settings.baseUrl,
        token: target.token ?? settings.token,
        timeoutMs: target.timeoutMs ?? settings.timeoutMs,
        retries: target.retries ?? settings.retries,
        deadlineMs: undefined,
        keepAlive: false,
      });
    },

    close() {
      consul.destroy();
    },
  };

  // A blocking query waits up to `wait` on the server: its attempt timeout must outlast that.
  const waitMs = (options: BlockingOptions) => parseWait(options.wait ?? '30s');
  const blockingCall = (options: BlockingOptions): CallOptions => ({
    timeoutMs: settings.timeoutMs + waitMs(options) + Math.max(waitMs(options) / 16, 500),
  });
  const blocking = (options: BlockingOptions) => ({
    index: String(options.index ?? 0),
    wait: options.wait ?? '30s',
  });

  return client;
}

/** Milliseconds of a Consul duration such as `30s`, `500ms` or `5m`. */
export function parseWait(wait: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(wait);
  if (!m) throw new PermanentError(`not a Consul wait duration: ${wait}`);
  const unit = { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
  return Number(m[1]) * unit;
}
