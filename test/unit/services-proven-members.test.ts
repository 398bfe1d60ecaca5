import { Writable } from 'node:stream';

import { aliveMembers } from '../../services/lib/proven-members';
import type { ConsulClient } from '../../shared/consul';
import { createLogger } from '../../shared/logging';

const logger = createLogger({ name: 'test', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

type Members = Awaited<ReturnType<ConsulClient['agent']['members']>>;
const member = (name: string, address: string, status: number) => ({ name, address, status, tags: {} });

describe('aliveMembers', () => {
  it('keeps alive members only, and the last answer for a minute when the agent fails', async () => {
    let answer: Members | Error = [
      member('haproxy-a', '10.0.2.5', 1),
      member('haproxy-left', '10.0.2.6', 3),
      member('haproxy-failed', '10.0.2.7', 4),
    ];
    let t = 0;
    const agent = {
      agent: {
        members: async () => {
          if (answer instanceof Error) throw answer;
          return answer;
        },
      },
    } as unknown as Pick<ConsulClient, 'agent'>;
    const members = aliveMembers(agent, logger, 60_000, () => t);
    expect([...(await members())]).toEqual([['haproxy-a', '10.0.2.5']]);
    answer = new Error('connection refused');
    t = 60_000;
    expect([...(await members())]).toEqual([['haproxy-a', '10.0.2.5']]);
    t = 60_001;
    expect([...(await members())]).toEqual([]);
    answer = [member('haproxy-b', '10.0.2.8', 1)];
    expect([...(await members())]).toEqual([['haproxy-b', '10.0.2.8']]);
  });
});
