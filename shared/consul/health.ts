import { parse } from './answers';
import type { Connection } from './package';
import { healthChecksSchema, serviceHealthSchema } from './schemas';
import type { ConsulClient } from './types';

export function healthApi({ consul, run }: Connection): ConsulClient['health'] {
  return {
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
  };
}
