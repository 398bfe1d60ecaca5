import { readFileSync } from 'node:fs';

import { parseUnit } from '../../infra-scripts/local/instance';
import {
  computeNamePattern,
  drainingKeyPrefix,
  parseRenderedConfig,
  parseServerLine,
} from '../../services/haproxy-sync/config';
import { coalesce } from '../../services/haproxy-sync/coalesce';
import { gateSlots, sanitise, skippedByReason } from '../../services/haproxy-sync/gate';
import { inCidrs, parseCidrs } from '../../services/lib/proven-members';
import { isSafeCommand, planSync, structureChange } from '../../services/haproxy-sync/plan';
import { parseRuntime, type RuntimeSlot } from '../../services/haproxy-sync/runtime';

const rendered = (servers: string) => `global
    stats socket /run/haproxy/admin.sock mode 600 level admin
backend backends
    balance roundrobin
${servers}
listen stats
    bind 127.0.0.1:8404
`;

const slot = (
  name: string,
  addr: string,
  port: number,
  maint = false,
  sessions = 0,
  drain = false,
): RuntimeSlot => ({
  name,
  pool: name[0] as 'z' | 'b',
  addr,
  port,
  maint,
  drain,
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
      { name: 'z1', pool: 'z', addr: '10.0.0.1', port: 8080, enabled: true, node: 'backend-a', drain: false },
      { name: 'z2', pool: 'z', addr: '127.0.0.1', port: 1, enabled: false, node: undefined, drain: false },
      { name: 'b1', pool: 'b', addr: '10.1.0.1', port: 8080, enabled: true, node: 'backend-c', drain: false },
    ]);
    expect(cfg.rejected).toEqual([]);
    const other = parseRenderedConfig(
      rendered(`    server z1 10.0.0.9:8080 # node=backend-x
    server z2 10.0.0.8:8080
    server b1 127.0.0.1:1 backup disabled`),
    );
    expect(other.structure).toBe(cfg.structure);
    const grown = parseRenderedConfig(
      rendered(`    server z1 10.0.0.9:8080 # node=a\n    server z2 10.0.0.8:8080 # node=b`),
    );
    expect(grown.structure).not.toBe(cfg.structure);
  });

  it('drains a server only when its node id equals the drain key id', () => {
    const line = (comment: string) => parseServerLine(`    server z1 10.0.0.1:8080 # ${comment}`);
    expect(line('node=backend-a id=111 drain-id=111')).toMatchObject({ node: 'backend-a', drain: true });
    // A same-name replacement has another instance id: it is never drained.
    expect(line('node=backend-a id=222 drain-id=111')).toMatchObject({ drain: false });
    expect(line('node=backend-a drain-id=111')).toMatchObject({ drain: false });
    expect(line('node=backend-a id=111')).toMatchObject({ drain: false });
  });

  it.each([
    ['an address with a semicolon', '    server z1 10.0.0.1;shutdown:8080 # node=backend-a'],
    ['a host name', '    server z1 evil.example.com:8080 # node=backend-a'],
    ['an address out of range', '    server z1 10.0.0.256:8080 # node=backend-a'],
    ['a port out of range', '    server z1 10.0.0.1:70000 # node=backend-a'],
    ['a node with a space', '    server z1 10.0.0.1:8080 # node=backend a'],
    ['a node that is no Compute name', '    server z1 10.0.0.1:8080 # node=Backend_A'],
    ['a non-numeric instance id', '    server z1 10.0.0.1:8080 # node=backend-a id=1;2'],
    ['an extra keyword', '    server z1 10.0.0.1:8080 weight 0 # node=backend-a'],
    ['a backup server in the zone pool', '    server z1 10.0.0.1:8080 backup # node=backend-a'],
    ['a server with another name', '    server evil 6.6.6.6:80'],
  ])('rejects %s, keeps the valid slots next to it', (_case, bad) => {
    const cfg = parseRenderedConfig(rendered(`    server z2 10.0.0.2:8080 # node=backend-b\n${bad}`));
    expect(cfg.rejected).toHaveLength(1);
    expect(cfg.slots.map((s) => s.addr)).toEqual(['10.0.0.2']);
  });

  it('reads the registrations the template skipped, without putting them in the structure', () => {
    const cfg = parseRenderedConfig(
      rendered(
        `    # skipped: invalid-registration node="backend-x" address="10.0.0.9:1\\n    server evil 6.6.6.6:80"\n    server z1 10.0.0.1:8080 # node=backend-a`,
      ),
    );
    expect(cfg.skipped).toEqual([
      {
        reason: 'invalid-registration',
        node: 'backend-x',
        address: '10.0.0.9:1\n    server evil 6.6.6.6:80',
      },
    ]);
    expect(cfg.rejected).toEqual([]);
    expect(cfg.structure).toBe(
      parseRenderedConfig(rendered('    server z1 10.0.0.7:8080 # node=c')).structure,
    );
  });
});

describe('planSync', () => {
  // Enabled servers carry their node, as the template renders them.
  const cfg = (servers: string) =>
    parseRenderedConfig(
      rendered(
        servers
          .split('\n')
          .map((l) => (/disabled|#/.test(l) ? l : `${l} # node=n`))
          .join('\n'),
      ),
    ).slots;

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
      drained: [],
      undrained: [],
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

  it('drains a listed server in place and makes it ready again when the key goes', () => {
    const drained = planSync(
      'backends',
      parseRenderedConfig(
        rendered(
          '    server z1 10.0.0.1:8080 # node=backend-a id=7 drain-id=7\n    server z2 10.0.0.2:8080 # node=b',
        ),
      ).slots,
      [slot('z1', '10.0.0.1', 8080), slot('z2', '10.0.0.2', 8080)],
      false,
    );
    expect(drained).toEqual({
      kind: 'runtime',
      commands: ['set server backends/z1 state drain'],
      added: [],
      removed: [],
      drained: ['10.0.0.1:8080'],
      undrained: [],
    });
    const restored = planSync(
      'backends',
      cfg('    server z1 10.0.0.1:8080\n    server z2 10.0.0.2:8080'),
      [slot('z1', '10.0.0.1', 8080, false, 3, true), slot('z2', '10.0.0.2', 8080)],
      false,
    );
    expect(restored).toMatchObject({
      commands: ['set server backends/z1 state ready'],
      undrained: ['10.0.0.1:8080'],
    });
    expect(
      [
        ...(drained.kind === 'runtime' ? drained.commands : []),
        'set server backends/z1 addr 10.0.0.1 port 80',
      ].every(isSafeCommand),
    ).toBe(true);
    expect(isSafeCommand('set server backends/z1 addr 10.0.0.1;shutdown port 80')).toBe(false);
  });

  it('reloads on a structural change', () => {
    expect(planSync('backends', [], [], true)).toEqual({
      kind: 'reload',
      reason: 'configuration structure changed',
    });
  });
});

describe('structureChange', () => {
  const servers = (z: number, b = 0) =>
    parseRenderedConfig(
      rendered(
        [
          ...Array.from({ length: z }, (_, i) => `    server z${i + 1} 127.0.0.1:1 disabled`),
          ...Array.from({ length: b }, (_, i) => `    server b${i + 1} 127.0.0.1:1 backup disabled`),
        ].join('\n'),
      ),
    );
  const running = (z: number, b = 0) => [
    ...Array.from({ length: z }, (_, i) => slot(`z${i + 1}`, '127.0.0.1', 1, true)),
    ...Array.from({ length: b }, (_, i) => slot(`b${i + 1}`, '127.0.0.1', 1, true)),
  ];

  it('needs no reload while the rendered slots fit the running ones, shrinking included', () => {
    expect(structureChange(servers(8, 8), servers(8, 8), running(8, 8))).toBeUndefined();
    // Flapping back under a step of 8 keeps the grown worker: no second reload.
    expect(structureChange(servers(16, 8), servers(8, 8), running(16, 8))).toBeUndefined();
  });

  it('reloads when a pool outgrows the running worker, or anything outside the slots changed', () => {
    expect(structureChange(servers(8, 8), servers(16, 8), running(8, 8))).toBe(
      '16 z slots rendered, 8 running',
    );
    expect(structureChange(servers(8, 8), servers(8, 16), running(8, 8))).toBe(
      '16 b slots rendered, 8 running',
    );
    const other = parseRenderedConfig(
      servers(8).structure.replace('balance roundrobin', 'balance leastconn'),
    );
    expect(structureChange(servers(8), other, running(8))).toBe('configuration structure changed');
  });
});

describe('coalesce', () => {
  it('never runs twice at once and folds pokes during a run into one more run', async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    const c = coalesce(async () => {
      runs++;
      active++;
      most = Math.max(most, active);
      await new Promise<void>((r) => (release = r));
      active--;
    }, fail);
    c.poke();
    for (let i = 0; i < 50; i++) c.poke();
    await Promise.resolve();
    release();
    await new Promise((r) => setImmediate(r));
    release();
    await c.idle();
    expect(runs).toBe(2);
    expect(most).toBe(1);
  });

  it('keeps running after a failed run', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const c = coalesce(
      async () => {
        runs++;
        if (runs === 1) throw new Error('boom');
      },
      (err) => errors.push(err),
    );
    c.poke();
    await c.idle();
    c.poke();
    await c.idle();
    expect(runs).toBe(2);
    expect(errors).toEqual([new Error('boom')]);
  });
});

const fail = (err: unknown) => {
  throw err;
};

describe('parseRuntime', () => {
  it('reads HAProxy 2.6 "show servers state" and "show stat" answers', () => {
    const state = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 backends 1 z1 127.77.3.11 2 0 1 1 1 8 2 0 6 0 0 0 - 8080 - 0 0 - - 0
3 backends 3 z3 127.0.0.1 0 5 1 1 1 1 0 0 14 0 0 0 - 1 - 0 0 - - 0
3 backends 4 z4 127.77.3.14 2 4 1 1 1 1 0 0 14 0 0 0 - 8080 - 0 0 - - 0
3 backends 5 z5 127.77.3.15 2 8 1 1 1 1 0 0 14 0 0 0 - 8080 - 0 0 - - 0
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
      // `state drain`.
      slot('z5', '127.77.3.15', 8080, false, 0, true),
    ]);
    expect(() => parseRuntime('Unknown command', stat, 'backends')).toThrow();
  });
});

describe('the shipped units', () => {
  it('run haproxy-sync as a daemon after HAProxy, with no Node process per render', () => {
    const unit = parseUnit('haproxy-sync', readFileSync('packer/haproxy/files/haproxy-sync.service', 'utf8'));
    expect(unit.execStart).toMatch(/haproxy-sync\/main\.js --config \/etc\/haproxy\/haproxy\.cfg /);
    expect(unit.execStart).not.toContain('--prepare');
    const hcl = readFileSync('packer/haproxy/files/consul-template.hcl', 'utf8');
    expect(hcl).not.toMatch(/^\s*command\s*=/m);
    // No quiescence of seconds: the daemon coalesces.
    expect(hcl).toMatch(/^\s*min\s*=\s*"\d{1,3}ms"$/m);
    const roles = readFileSync('packer/consul/files/install-role.sh', 'utf8');
    expect(roles).toContain(
      'haproxy) units="ilb-bootstrap consul consul-identity consul-template haproxy haproxy-sync ilb-drain"',
    );
  });
});

describe('the shipped template', () => {
  it('declares the slot pools haproxy-sync manages', () => {
    const template = readFileSync('packer/haproxy/files/haproxy.cfg.ctmpl', 'utf8');
    expect(template).toMatch(/server \{\{ \$pool \}\}\{\{ add \$i 1 \}\} 127\.0\.0\.1:1/);
    expect(template).toContain(`tree "${drainingKeyPrefix}"`);
    expect(template).toContain('monitor fail if { nbsrv(backends) lt 1 }');
    // The template and haproxy-sync accept the same node names.
    expect(template).toContain(`$name := \`${computeNamePattern.source}\``);
  });
});

const gatedText = rendered(`    # skipped: wrong-port node="backend-p" address="10.0.2.9"
    server z1 10.0.2.1:8080 # node=backend-a id=1
    server z2 10.0.2.2:0 # node=backend-zero id=2
    server z3 10.0.9.3:8080 # node=backend-out id=3
    server z4 10.0.2.4:8080 # node=backend-rogue id=4
    server z5 10.0.2.5:8080 # node=backend-moved id=5
    server z6 127.0.0.1:1 disabled
    server b1 10.0.2.6:8080 backup # node=backend-b id=6
    server b2 127.0.0.1:1 backup disabled`);

const members = new Map([
  ['backend-a', '10.0.2.1'],
  ['backend-out', '10.0.9.3'],
  ['backend-moved', '10.0.2.50'],
  ['backend-b', '10.0.2.6'],
]);

describe('CIDRs', () => {
  it('parses a list and matches addresses by prefix', () => {
    const cidrs = parseCidrs('10.0.2.0/24, 127.64.0.0/10,192.168.1.7/32');
    expect(inCidrs('10.0.2.255', cidrs)).toBe(true);
    expect(inCidrs('10.0.3.0', cidrs)).toBe(false);
    expect(inCidrs('127.127.255.1', cidrs)).toBe(true);
    expect(inCidrs('127.128.0.1', cidrs)).toBe(false);
    expect(inCidrs('192.168.1.7', cidrs)).toBe(true);
    expect(inCidrs('192.168.1.8', cidrs)).toBe(false);
    expect(inCidrs('not-an-ip', cidrs)).toBe(false);
    expect(inCidrs('1.2.3.4', parseCidrs('0.0.0.0/0'))).toBe(true);
  });

  it.each(['10.0.2.0', '10.0.2.0/33', '10.0.2.300/24', 'a.b.c.d/8', '10.0.2.0/24;x'])('refuses %s', (bad) => {
    expect(() => parseCidrs(bad)).toThrow(/not an IPv4 CIDR/);
  });
});

describe('the routing gate', () => {
  const cfg = parseRenderedConfig(gatedText);

  it('routes only to alive members at their gossip address inside the subnets', () => {
    const { slots, gated } = gateSlots(cfg, { cidrs: parseCidrs('10.0.2.0/24'), members });
    expect(slots.filter((s) => s.enabled).map((s) => s.node)).toEqual(['backend-a', 'backend-b']);
    expect(gated.map((g) => [g.slot.node, g.reason])).toEqual([
      ['backend-out', 'outside-subnet'],
      ['backend-rogue', 'not-a-member'],
      ['backend-moved', 'member-address-differs'],
    ]);
    expect(skippedByReason(cfg, gated)).toEqual({
      'wrong-port': 1,
      'rejected-line': 1,
      'outside-subnet': 1,
      'not-a-member': 1,
      'member-address-differs': 1,
    });
  });

  it('loads bad and refused lines as unused slots: same structure, a reload is never blocked', () => {
    const { gated } = gateSlots(cfg, { cidrs: parseCidrs('10.0.2.0/24'), members });
    const loadable = parseRenderedConfig(sanitise(gatedText, cfg, gated));
    expect(loadable.rejected).toEqual([]);
    expect(loadable.structure).toBe(cfg.structure);
    expect(loadable.slots.filter((s) => s.enabled).map((s) => s.addr)).toEqual(['10.0.2.1', '10.0.2.6']);
    expect(loadable.slots.map((s) => s.name)).toEqual(['z1', 'z2', 'z3', 'z4', 'z5', 'z6', 'b1', 'b2']);
    // The live path plans from the same slots.
    const plan = planSync('backends', loadable.slots, [], false);
    expect(plan).toEqual({ kind: 'reload', reason: 'no free z slot for 10.0.2.1:8080' });
  });

  it('without a policy, only the parser refuses', () => {
    const { gated } = gateSlots(cfg, { cidrs: null, members: null });
    expect(gated).toEqual([]);
    expect(sanitise(gatedText, cfg, gated)).not.toContain(':0 ');
    expect(sanitise(gatedText, cfg, gated)).toContain('10.0.9.3:8080');
  });

  it('admits one server per node: the first admitted slot, zone-local pool first', () => {
    const text = rendered(`    server z1 10.0.9.1:8080 # node=backend-a id=1
    server z2 10.0.2.1:8080 # node=backend-a id=1
    server z3 10.0.2.1:8080 # node=backend-a id=1
    server z4 10.0.2.6:8080 # node=backend-b id=6
    server b1 10.0.2.1:8080 backup # node=backend-a id=1
    server b2 127.0.0.1:1 backup disabled`);
    const parsed = parseRenderedConfig(text);
    const policy = { cidrs: parseCidrs('10.0.2.0/24'), members };
    const { slots, gated } = gateSlots(parsed, policy);
    // The out-of-subnet z1 does not count as the node's server: z2 is.
    expect(slots.filter((s) => s.enabled).map((s) => s.name)).toEqual(['z2', 'z4']);
    expect(gated.map((g) => [g.slot.name, g.reason])).toEqual([
      ['z1', 'outside-subnet'],
      ['z3', 'duplicate-node'],
      ['b1', 'duplicate-node'],
    ]);
    expect(skippedByReason(parsed, gated)).toEqual({ 'outside-subnet': 1, 'duplicate-node': 2 });
    const loadable = parseRenderedConfig(sanitise(text, parsed, gated));
    expect(loadable.slots.filter((s) => s.enabled).map((s) => s.addr)).toEqual(['10.0.2.1', '10.0.2.6']);
    // Without a policy the duplicates still go.
    expect(gateSlots(parsed, { cidrs: null, members: null }).gated.map((g) => g.slot.name)).toEqual([
      'z2',
      'z3',
      'b1',
    ]);
  });

  it("counts the template's duplicate-node comments", () => {
    const text = rendered(`    # skipped: duplicate-node node="backend-a" address="10.0.2.1"
    server z1 10.0.2.1:8080 # node=backend-a id=1`);
    const parsed = parseRenderedConfig(text);
    expect(skippedByReason(parsed, [])).toEqual({ 'duplicate-node': 1 });
  });

  it('drops a rejected line that names no slot', () => {
    const bad = rendered(`    server evil 6.6.6.6:80\n    server z1 10.0.2.1:8080 # node=backend-a`);
    const parsed = parseRenderedConfig(bad);
    expect(sanitise(bad, parsed, [])).not.toContain('evil');
  });
});
