import type { Kit, Part } from './kit';
import { roles, type Role } from './names';

/** Custom VPC, the VMs' subnet and the functions' egress subnet, NAT for package mirrors. */
export function networkSteps(k: Kit): Part {
  const { c, n, marker } = k;
  const region = `--region=${c.region}`;
  const subnets = [
    [n.subnet, c.network.cidr, 'VMs'],
    [n.fnSubnet, c.network.functionsCidr, 'functions egress'],
  ] as const;
  return {
    steps: [
      k.resource('network', `network ${n.network}`, {
        group: ['compute', 'networks'],
        name: n.network,
        args: ['--subnet-mode=custom', `--description=${marker}`],
      }),
      ...subnets.map(([name, range, what]) =>
        k.resource(`subnet-${name}`, `subnet ${name} (${what}, ${range})`, {
          group: ['compute', 'networks', 'subnets'],
          name,
          scope: [region],
          args: [
            `--network=${n.network}`,
            region,
            `--range=${range}`,
            '--enable-private-ip-google-access',
            `--description=${marker}`,
          ],
        }),
      ),
      k.resource('router', `Cloud Router ${n.router}`, {
        group: ['compute', 'routers'],
        name: n.router,
        scope: [region],
        args: [`--network=${n.network}`, region, `--description=${marker}`],
      }),
      k.resource('nat', `Cloud NAT ${n.nat} (private VMs reach package mirrors)`, {
        group: ['compute', 'routers', 'nats'],
        name: n.nat,
        scope: [`--router=${n.router}`, region],
        args: [
          `--router=${n.router}`,
          region,
          '--auto-allocate-nat-external-ips',
          `--nat-custom-subnet-ip-ranges=${n.subnet}`,
        ],
      }),
    ],
  };
}

/** The Consul servers' fixed private addresses, the frontend's public one. */
export function addressSteps(k: Kit): Part {
  const { c, n, marker } = k;
  const region = `--region=${c.region}`;
  const address = (id: string, title: string, name: string, args: string[]) =>
    k.resource(id, title, {
      group: ['compute', 'addresses'],
      name,
      scope: [region],
      args: [region, ...args, `--description=${marker}`],
    });
  return {
    steps: [
      ...k.serverIps.map((ip, i) =>
        address(
          `address-consul-${i}`,
          `private address ${ip} for ${n.consulServer(i)}`,
          n.consulAddressName(i),
          [`--subnet=${n.subnet}`, `--addresses=${ip}`],
        ),
      ),
      address('address-frontend', `public address ${n.frontendAddress}`, n.frontendAddress, []),
    ],
    lookups: {
      frontendIp: [
        'compute',
        'addresses',
        'describe',
        n.frontendAddress,
        region,
        ...k.P,
        '--format=value(address)',
      ],
    },
  };
}

/**
 * Sources and targets are service accounts (a tag can be set by anyone who may edit an instance);
 * address ranges only for Google's health checkers, IAP, the functions' egress and the frontend's
 * public port.
 */
export function firewallSteps(k: Kit): Part {
  const { c, n, marker } = k;
  const all = roles.map((r) => n.roleSa(r)).join(',');
  const consul = n.roleSa('consul');
  const clients = (['backend', 'haproxy', 'frontend'] as const).map((r) => n.roleSa(r)).join(',');
  const from = (r: Role) => [`--source-service-accounts=${n.roleSa(r)}`];
  const rules: [string, string, string[], string][] = [
    ['consul-lan', 'tcp:8301,udp:8301', [`--source-service-accounts=${all}`], all],
    ['consul-rpc', 'tcp:8300', [`--source-service-accounts=${all}`], consul],
    ['consul-wan', 'tcp:8302,udp:8302', from('consul'), consul],
    ['consul-https-functions', 'tcp:8501', [`--source-ranges=${c.network.functionsCidr}`], consul],
    // Client VMs log in (their identity token) at a server before their agent can start.
    ['consul-https-login', 'tcp:8501', [`--source-service-accounts=${clients}`], consul],
    ['haproxy', 'tcp:8080', from('frontend'), n.roleSa('haproxy')],
    ['backend', 'tcp:8080', from('haproxy'), n.roleSa('backend')],
    [
      'health-checks',
      'tcp:80,tcp:8080',
      ['--source-ranges=35.191.0.0/16,130.211.0.0/22'],
      (['backend', 'haproxy', 'frontend'] as const).map((r) => n.roleSa(r)).join(','),
    ],
    // The ACL registration step reaches a Consul server through IAP only.
    ['iap-ssh', 'tcp:22', ['--source-ranges=35.235.240.0/20'], consul],
    ['frontend-public', 'tcp:80', ['--source-ranges=0.0.0.0/0'], n.roleSa('frontend')],
  ];
  return {
    steps: rules.map(([suffix, allow, source, targets]) => {
      const name = `${c.deployment}-${suffix}`;
      return k.resource(`firewall-${suffix}`, `firewall ${name} (${allow})`, {
        group: ['compute', 'firewall-rules'],
        name,
        args: [
          `--network=${n.network}`,
          '--direction=INGRESS',
          `--allow=${allow}`,
          ...source,
          `--target-service-accounts=${targets}`,
          `--description=${marker}`,
        ],
      });
    }),
  };
}
