import { z } from 'zod';
import { parse } from './answers';
import type { Connection } from './package';
import type { ConsulClient } from './types';

export function sessionApi({ consul, run }: Connection): ConsulClient['session'] {
  return {
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
  };
}
