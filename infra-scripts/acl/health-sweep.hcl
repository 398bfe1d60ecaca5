# Consul ACL policy for the token of the `healthSweep` Cloud Function (least privilege).
# Create it with:
#   consul acl policy create -name health-sweep -rules @infra-scripts/acl/health-sweep.hcl
#   consul acl token create -description "fn healthSweep" -policy-name health-sweep
# and hand the token to the function as CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE. The same
# token serves its HTTP entry points (healthSweepHttp, healthSweepActHttp). The sweep never
# force-leaves: it holds no `operator = "write"` token (force-leave.hcl is instanceEvents' alone);
# Consul reaps the failed members it deregisters (the agents' advertise_reconnect_timeout).
# What a stolen token can do: shared/health-sweep/README.md.
#
# node read: every node's identity metadata and checks (`/v1/catalog/nodes`, `/v1/health/state/any`).
node_prefix "" {
  policy = "read"
}
# node write, only on the node-name prefixes of the roles MIGs manage (shared/contract.ts
# managedRoles; instances are named `<role>-<suffix>`): delete a stale node with `/v1/txn`
# delete-cas on its ModifyIndex (instanceEvents' deregistration path). Consul servers
# (`consul-…`) stay read-only.
node_prefix "backend-" {
  policy = "write"
}
node_prefix "haproxy-" {
  policy = "write"
}
node_prefix "frontend-" {
  policy = "write"
}
# service read: `/v1/health/state/any` returns a service's checks only to a token that may read
# the service.
service_prefix "" {
  policy = "read"
}
# session write on the Consul servers' nodes only: the sweep lock's session is created without a
# node, so Consul ties it to the agent that answers, which is the server the function is configured
# to talk to (CONSUL_HTTP_ADDR; `consul-<deployment>-<i>` when deployed, `consul-server-<n>` in the
# sandbox). Consul checks session write against that node's name.
session_prefix "consul-" {
  policy = "write"
}
# The sweep's own state: marks, token bucket, lock.
key_prefix "gce-ilb-orchestrator/health-sweep/" {
  policy = "write"
}
# Leftovers it reaps: instanceEvents' records and drain list entries of instances that are gone
# (delete by CAS; it reads the whole drain list every sweep) and the ledger's day folders past
# retention.
key_prefix "gce-ilb-orchestrator/instance-events/instances/" {
  policy = "write"
}
key_prefix "gce-ilb-orchestrator/draining/" {
  policy = "write"
}
key_prefix "gce-ilb-orchestrator/ledger/instance-events/" {
  policy = "write"
}
# scalingAlerts' records: the lease pass (shared/scaling-alerts/sweep.ts) reverts what expired leases
# held and writes the record back by compare-and-set. Only when the sweep is given the rule file.
key_prefix "gce-ilb-orchestrator/scaling-alerts/autoscalers/" {
  policy = "write"
}
