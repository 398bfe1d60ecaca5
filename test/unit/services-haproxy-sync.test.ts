import { readFileSync } from 'node:fs';

import { parseRenderedConfig } from '../../services/haproxy-sync/config';
import { planSync } from '../../services/haproxy-sync/plan';
import { parseRuntime, type RuntimeSlot } from '../../services/haproxy-sync/runtime';

const rendered = (servers: string) => `global
    stats socket /run/haproxy/admin.sock mode 600 level admin
backend backends
    balance roundrobin
${servers}
listen stats
    bind 127.0.0.1:8404
`;

const slot = (name: string, addr: string, port: number, maint = false, sessions = 0): RuntimeSlot => ({
  name,
  pool: name[0] as 'z' | 'b',
  addr,
  port,
  maint,
  sessions,
});

describe('parseRenderedConfig', () => {
  it('reads the slots of the backends section and reduces them out of the structure', () => {
    const cfg = parseRenderedConfig(
      rendered(`    server z1 10.0.0.1:8080 # node=backend-a
    server z2 127.0.0.1:1 disabled
    server b1 10.1.0.1:8080 backup # node=backend-c`),
    );
    expect(cfg.slots).toEqual([
      { name: 'z1', pool: 'z', addr: '10.0.0.1', port: 8080, enabled: true, node: 'backend-a' },
      { name: 'z2', pool: 'z', addr: '127.0.0.1', port: 1, enabled: false, node: undefined },
      { name: 'b1', pool: 'b', addr: '10.1.0.1', port: 8080, enabled: true, node: 'backend-c' },
    ]);
    const other = parseRenderedConfig(
      rendered(`    server z1 10.0.0.9:8080 # node=backend-x
    server z2 10.0.0.8:8080
    server b1 127.0.0.1:1 backup disabled`),
    );
    expect(other.structure).toBe(cfg.structure);
    const grown = parseRenderedConfig(rendered(`    server z1 10.0.0.9:8080\n    server z2 10.0.0.8:8080`));
    expect(grown.structure).not.toBe(cfg.structure);
  });
});

describe('planSync', () => {
  const cfg = (servers: string) => parseRenderedConfig(rendered(servers)).slots;

  it('does nothing when the running servers match', () => {
    const plan = planSync(
      'backends',
      cfg('    server z1 10.0.0.1:8080\n    server z2 127.0.0.1:1 disabled'),
      [slot('z1', '10.0.0.1', 8080), slot('z2', '127.0.0.1', 1, true)],
      false,
    );
    expect(plan).toEqual({ kind: 'noop' });
  });

  it('puts departed servers in maintenance and gives new ones a free slot', () => {
    const plan = planSync(
      'backends',
      cfg(
        '    server z1 10.0.0.2:8080\n    server z2 127.0.0.1:1 disabled\n    server z3 127.0.0.1:1 disabled',
      ),
      [slot('z1', '10.0.0.1', 8080), slot('z2', '127.0.0.1', 1, true), slot('z3', '127.0.0.1', 1, true)],
      false,
    );
    expect(plan).toEqual({
      kind: 'runtime',
      removed: ['10.0.0.1:8080'],
      added: ['10.0.0.2:8080'],
      commands: [
        'set server backends/z1 state maint',
        'set server backends/z2 addr 10.0.0.2 port 8080',
        'set server backends/z2 state ready',
        'set server backends/z2 health up',
      ],
    });
  });

  it('never reuses a slot whose old server still has connections, nor one it just emptied', () => {
    const running = [slot('z1', '10.0.0.1', 8080), slot('z2', '10.0.0.7', 8080, true, 3)];
    const plan = planSync(
      'backends',
      cfg('    server z1 10.0.0.2:8080\n    server z2 127.0.0.1:1 disabled'),
      running,
      false,
    );
    expect(plan).toEqual({ kind: 'reload', reason: 'no free z slot for 10.0.0.2:8080' });
  });

  it('brings a returning server back in its old slot, and keeps pools apart', () => {
    const plan = planSync(
      'backends',
      cfg('    server z1 10.0.0.1:8080\n    server b1 10.1.0.1:8080 backup'),
      [slot('z1', '10.0.0.1', 8080, true, 2), slot('b1', '127.0.0.1', 1, true)],
      false,
    );
    expect(plan).toMatchObject({
      kind: 'runtime',
      commands: [
        'set server backends/z1 state ready',
        'set server backends/z1 health up',
        'set server backends/b1 addr 10.1.0.1 port 8080',
        'set server backends/b1 state ready',
        'set server backends/b1 health up',
      ],
    });
  });

  it('reloads on a structural change', () => {
    expect(planSync('backends', [], [], true)).toEqual({
      kind: 'reload',
      reason: 'configuration structure changed',
    });
  });
});

describe('parseRuntime', () => {
  it('reads HAProxy 2.6 "show servers state" and "show stat" answers', () => {
    const state = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 backends 1 z1 127.77.3.11 2 0 1 1 1 8 2 0 6 0 0 0 - 8080 - 0 0 - - 0
3 backends 3 z3 127.0.0.1 0 5 1 1 1 1 0 0 14 0 0 0 - 1 - 0 0 - - 0
3 backends 4 z4 127.77.3.14 2 4 1 1 1 1 0 0 14 0 0 0 - 8080 - 0 0 - - 0
`;
    const stat = `# pxname,svname,qcur,qmax,scur,smax,slim
backends,z1,0,0,4,9,
backends,z3,0,0,0,0,
`;
    expect(parseRuntime(state, stat, 'backends')).toEqual([
      slot('z1', '127.77.3.11', 8080, false, 4),
      slot('z3', '127.0.0.1', 1, true, 0),
      // Configured `disabled`, then `state ready`: serving.
      slot('z4', '127.77.3.14', 8080, false, 0),
    ]);
    expect(() => parseRuntime('Unknown command', stat, 'backends')).toThrow();
  });
});

describe('the shipped template', () => {
  it('declares the slot pools haproxy-sync manages', () => {
    const template = readFileSync('packer/haproxy/files/haproxy.cfg.ctmpl', 'utf8');
    expect(template).toMatch(/server z\{\{ add \$i 1 \}\}/);
    expect(template).toMatch(/server b\{\{ add \$i 1 \}\} 127\.0\.0\.1:1 backup disabled/);
  });
});
