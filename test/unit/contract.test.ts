import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  checkIds,
  consulHttpPort,
  defaultKvPrefix,
  haproxyDnsName,
  kvPrefixes,
  managedRoles,
  nodeMetaKeys,
  roles,
  services,
} from '../../shared/contract';

/**
 * The shell scripts, units, templates and HCL under packer/ and infra-scripts/acl/ cannot import
 * shared/contract.ts: this checks that they name the same values.
 */
const repo = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(repo, file), 'utf8');

describe('contract: packer files and ACL policies agree with shared/contract.ts', () => {
  it('each serving role boots its Consul service with the contract name and port', () => {
    for (const [role, service] of Object.entries(services)) {
      const startup = read(`packer/${role}/files/startup.sh`);
      expect(startup).toMatch(
        new RegExp(`consul-bootstrap\\.sh" ${role} ${service.name} ${service.port}\\b`),
      );
    }
  });

  it('each app listens on its service port', () => {
    expect(read('packer/backend/files/backend.service')).toMatch(
      new RegExp(`--port ${services.backend.port}\\b`),
    );
    expect(read('packer/frontend/files/frontend.service')).toMatch(
      new RegExp(`--port ${services.frontend.port}\\b`),
    );
    expect(read('packer/haproxy/files/haproxy.cfg.ctmpl')).toMatch(
      new RegExp(`bind \\{\\{ env "ILB_BIND_ADDR" \\}\\}:${services.haproxy.port}\\b`),
    );
    expect(haproxyDnsName).toBe(`${services.haproxy.name}.service.consul`);
  });

  it('HAProxy renders the backend service, and the tokens read the services by their contract names', () => {
    expect(read('packer/haproxy/files/haproxy.cfg.ctmpl')).toContain(`service "${services.backend.name}"`);
    expect(read('packer/consul/files/acl/haproxy-default.hcl')).toContain(
      `service "${services.backend.name}"`,
    );
    expect(read('packer/consul/files/acl/frontend-default.hcl')).toContain(
      `service "${services.haproxy.name}"`,
    );
    // Each role's login binds a service identity of its contract service (acl-setup.sh's role:service pairs).
    const pairs =
      /for pair in ([^;]*);/.exec(read('packer/consul/files/acl-setup.sh'))?.[1]?.split(/\s+/) ?? [];
    for (const [role, service] of Object.entries(services))
      expect(pairs).toContain(`${role}:${service.name}`);
  });

  it('every agent registers the node metadata keys of the contract', () => {
    const bootstrap = read('packer/consul/files/consul-bootstrap.sh');
    const nodeMeta = /node_meta: \{([^}]*)\}/.exec(bootstrap)?.[1] ?? '';
    const keys = [...nodeMeta.matchAll(/"?([a-z-]+)"?: \$/g)].map((m) => m[1]);
    expect(keys.sort()).toEqual(Object.values(nodeMetaKeys).sort());
  });

  it('install-role.sh knows every role, and every role has an image', () => {
    const install = read('packer/consul/files/install-role.sh');
    // One template builds every role (`-var role=`); its validation lists the roles it accepts.
    const accepted = /contains\(\[([^\]]*)\], var\.role\)/.exec(read('packer/image.pkr.hcl'))?.[1] ?? '';
    expect([...accepted.matchAll(/"([a-z]+)"/g)].map((m) => m[1]).sort()).toEqual([...roles].sort());
    for (const role of roles) {
      if (role !== 'consul') expect(install).toMatch(new RegExp(`^\\s*${role}\\)`, 'm'));
    }
  });

  it('the instanceEvents policy grants exactly the KV prefixes the function writes', () => {
    const policy = read('infra-scripts/acl/instance-events.hcl');
    const granted = [...policy.matchAll(/key_prefix "([^"]*)"/g)].map((m) => m[1]);
    const prefixes = kvPrefixes(defaultKvPrefix);
    expect(granted).toContain(prefixes.instanceEventsLedger);
    // The records live under the granted `instance-events/` folder.
    expect(granted.some((g) => g !== undefined && prefixes.instanceRecords.startsWith(g))).toBe(true);
    expect(granted).toContain(prefixes.draining);
    expect(granted.every((g) => g?.startsWith(defaultKvPrefix))).toBe(true);
  });

  it('the instanceEvents policy writes only managed nodes, never servers; operator only on its own token', () => {
    const policy = read('infra-scripts/acl/instance-events.hcl');
    const writes = [...policy.matchAll(/node_prefix "([^"]*)" \{\s*policy = "write"/g)].map((m) => m[1]);
    expect(writes.sort()).toEqual(managedRoles.map((r) => `${r}-`).sort());
    expect(policy).not.toMatch(/^\s*(operator|acl|agent_prefix|keyring)\b/m);
    expect(read('infra-scripts/acl/force-leave.hcl').match(/^[a-z_]+/gm)).toEqual(['operator']);
  });

  it('the healthSweep policy writes only managed nodes, sessions only on servers, no operator', () => {
    const policy = read('infra-scripts/acl/health-sweep.hcl');
    const writes = (resource: string) =>
      [...policy.matchAll(new RegExp(`${resource} "([^"]*)" \\{\\s*policy = "write"`, 'g'))].map((m) => m[1]);
    expect(writes('node_prefix').sort()).toEqual(managedRoles.map((r) => `${r}-`).sort());
    expect(writes('session_prefix')).toEqual(['consul-']);
    expect(policy).not.toMatch(/^\s*(operator|acl|agent_prefix|keyring)\b/m);
    const prefixes = kvPrefixes(defaultKvPrefix);
    expect(writes('key_prefix').sort()).toEqual(
      [
        prefixes.healthSweep,
        prefixes.instanceRecords,
        prefixes.draining,
        prefixes.instanceEventsLedger,
        // The lease pass over scalingAlerts' records.
        prefixes.scalingAlertsAutoscalers,
      ].sort(),
    );
  });

  it('the scalingAlerts policy writes its records and nothing else', () => {
    const policy = read('infra-scripts/acl/scaling-alerts.hcl');
    const rules = [...policy.matchAll(/^([a-z_]+) "([^"]*)"/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(rules).toEqual([`key_prefix ${kvPrefixes(defaultKvPrefix).scalingAlertsAutoscalers}`]);
  });

  it('agents serve HTTP on the contract port', () => {
    expect(read('packer/consul/files/consul-bootstrap.sh')).toContain(
      `CONSUL_HTTP_ADDR=$client_addr:${consulHttpPort}`,
    );
  });

  it("check ids are Consul's own", () => {
    expect(checkIds.nodeMaintenance).toBe('_node_maintenance');
    // The bootstrap script waits for the leader's liveness check before it confirms the node's metadata.
    expect(read('packer/consul/files/consul-bootstrap.sh')).toContain(`.CheckID == "${checkIds.serfHealth}"`);
  });
});
