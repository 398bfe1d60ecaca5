import { z } from 'zod';
import { parse } from './answers';
import type { Connection } from './package';
import type { ConsulClient } from './types';

/** Not in the package: it has only the legacy ACL API, which Consul removed in 1.11. */
export function aclApi({ run, raw }: Connection): ConsulClient['acl'] {
  return {
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
  };
}
