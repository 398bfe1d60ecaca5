/** The agents' Consul policies the deploy tests plan with (packer/consul/files/acl/ in shape). */
export const agentPolicies: Record<string, string> = {
  consul: 'node_prefix "consul-" { policy = "write" }',
  'consul-default': 'node_prefix "" { policy = "read" }',
  'backend-default': 'node_prefix "" { policy = "read" }',
  'haproxy-default': 'node_prefix "" { policy = "read" }',
  'frontend-default': 'node_prefix "" { policy = "read" }',
};
