import { PermanentError } from '../errors';
import { parse, toCatalogNodes } from './answers';
import { isResponseError, type Connection } from './package';
import { catalogNodeAnswerSchema, catalogNodesSchema } from './schemas';
import type { CatalogRegistration, ConsulClient } from './types';

/** The package's `catalog.register` options for a registration. */
const registerOptions = (r: CatalogRegistration) => ({
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
});

export function catalogApi(
  { consul, run, raw }: Connection,
  txn: ConsulClient['txn'],
): ConsulClient['catalog'] {
  return {
    node: (name, options = {}) =>
      run(`catalog node ${name}`, async (pass) => {
        try {
          // A per-request cap is not in the package: then through its HTTP client.
          const answer =
            options.maxResponseBytes === undefined
              ? await consul.catalog.node.services({ node: name, ...pass })
              : (
                  await raw(
                    '_get',
                    {
                      name: 'catalog.node.services',
                      path: '/catalog/node/{node}',
                      params: { node: name },
                      maxResponseBytes: options.maxResponseBytes,
                    },
                    pass,
                  )
                ).body;
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
        return toCatalogNodes(parse(catalogNodesSchema, answer ?? [], 'catalog/nodes'));
      }),
    register: (r) =>
      run(`catalog register ${r.node}`, async (pass) => {
        await consul.catalog.register({ ...registerOptions(r), ...pass });
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
      const answer = await txn([
        { Node: { Verb: 'delete-cas', Node: { Node: name, ModifyIndex: modifyIndex } } },
      ]);
      if (answer.ok) return 'deleted';
      // A rolled-back CAS is an answer, not a failure; anything else (e.g. ACL) is a real error.
      if (answer.errors.every((e) => /index is stale/i.test(e.What))) return 'conflict';
      throw new PermanentError(`txn delete-cas ${name}: ${answer.errors.map((e) => e.What).join('; ')}`, {
        status: 409,
      });
    },
  };
}
