import { parseRenderedConfig } from '../../services/haproxy-sync/config';
import { gateSlots, inCidrs, parseCidrs, sanitise, skippedByReason } from '../../services/haproxy-sync/gate';
import { planSync } from '../../services/haproxy-sync/plan';

const rendered = (servers: string) => `global
    stats socket /run/haproxy/admin.sock mode 600 level admin
backend backends
    balance roundrobin
${servers}
listen stats
    bind 127.0.0.1:8404
`;

const text = rendered(`    # skipped: wrong-port node="backend-p" address="10.0.2.9"
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
  const cfg = parseRenderedConfig(text);

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
    const loadable = parseRenderedConfig(sanitise(text, cfg, gated));
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
    expect(sanitise(text, cfg, gated)).not.toContain(':0 ');
    expect(sanitise(text, cfg, gated)).toContain('10.0.9.3:8080');
  });

  it('drops a rejected line that names no slot', () => {
    const bad = rendered(`    server evil 6.6.6.6:80\n    server z1 10.0.2.1:8080 # node=backend-a`);
    const parsed = parseRenderedConfig(bad);
    expect(sanitise(bad, parsed, [])).not.toContain('evil');
  });
});
