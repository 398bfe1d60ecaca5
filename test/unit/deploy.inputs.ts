/** The agents' Consul policies the deploy tests plan with (packer/consul/files/acl/ in shape). */
export const agentPolicies: Record<string, string> = {
  consul: 'node_prefix "consul-" { policy = "write" }',
  'consul-default': 'node_prefix "" { policy = "read" }',
  backend: 'node_prefix "backend-" { policy = "write" }',
  'backend-default': 'node_prefix "" { policy = "read" }',
  haproxy: 'node_prefix "haproxy-" { policy = "write" }',
  'haproxy-default': 'node_prefix "" { policy = "read" }',
  frontend: 'node_prefix "frontend-" { policy = "write" }',
  'frontend-default': 'node_prefix "" { policy = "read" }',
};
