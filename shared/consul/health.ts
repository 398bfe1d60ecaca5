import { parse } from './answers';
import type { Connection } from './package';
import { healthChecksSchema, serviceHealthSchema } from './schemas';
import type { ConsulClient } from './types';

// `filter` is Consul's server-side filtering (bexpr) on each check of the answer: CheckID, Status,
// ServiceID, … (https://developer.hashicorp.com/consul/api-docs/health, "Filtering").
const filterQuery = (filter: string | undefined): Record<string, string> => (filter ? { filter } : {});

export function healthApi({ consul, run, raw }: Connection): ConsulClient['health'] {
  return {
    node: (name, options = {}) =>
      run(`health node ${name}`, async (pass) => {
        if (options.filter === undefined && options.maxResponseBytes === undefined) {
          return parse(
            healthChecksSchema,
            (await consul.health.node({ node: name, ...pass })) ?? [],
            'health/node',
          );
        }
        // Not in the package: a per-request cap (and the filter) through its HTTP client.
        const res = await raw(
          '_get',
          {
            name: 'health.node',
            path: '/health/node/{node}',
            params: { node: name },
            query: filterQuery(options.filter),
            ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
          },
          pass,
        );
        return parse(healthChecksSchema, res.body ?? [], 'health/node');
      }),
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
    state: (state = 'any', options = {}) =>
      run(`health state ${state}`, async (pass) =>
        parse(
          healthChecksSchema,
          (await consul.health.state({ state, ...filterQuery(options.filter), ...pass })) ?? [],
          'health/state',
        ),
      ),
  };
}
