import { z } from 'zod';
import { parse } from './answers';
import type { Connection } from './package';
import type { ConsulClient } from './types';

export function statusApi({ consul, run }: Connection): ConsulClient['status'] {
  return {
    leader: () =>
      run('status leader', async (pass) =>
        parse(z.string(), (await consul.status.leader(pass)) ?? '', 'status/leader'),
      ),
    peers: () =>
      run('status peers', async (pass) =>
        parse(z.array(z.string()), (await consul.status.peers(pass)) ?? [], 'status/peers'),
      ),
  };
}
