# Consul ACL policy for the token of the `instanceEvents` Cloud Function (least privilege).
# Create it with:
#   consul acl policy create -name instance-events -rules @infra-scripts/acl/instance-events.hcl
#   consul acl token create -description "fn instanceEvents" -policy-name instance-events
# and hand the token to the function as CONSUL_HTTP_TOKEN (a Secret Manager secret mounted as an
# env var) or CONSUL_HTTP_TOKEN_FILE (mounted as a file). Force-leave needs `operator = "write"`,
# which this policy does not grant: it lives in force-leave.hcl, on a separate
# token (CONSUL_FORCE_LEAVE_TOKEN[_FILE]) used for nothing else.
#
# The function talks only to its configured Consul address; it never calls a node's own agent
# (drains go through the KV drain list below), so it needs no agent rule at all.
#
# node read: find a node by name or by its gce-instance-id metadata, read its serfHealth check.
node_prefix "" {
  policy = "read"
}
# node write, only on the node-name prefixes of the roles MIGs manage (instances are named
# `<role>-<suffix>`, packer/ and infra-scripts/local/scenarios/topology.ts): delete a departed
# node with `/v1/txn` delete-cas. Consul servers (`consul-…`) stay read-only.
node_prefix "backend-" {
  policy = "write"
}
node_prefix "haproxy-" {
  policy = "write"
}
node_prefix "frontend-" {
  policy = "write"
}
# The function's state: its idempotency ledger, per-instance records, and the drain list the
# HAProxy tier reads (packer/haproxy/files/haproxy.cfg.ctmpl).
key_prefix "gce-ilb-orchestrator/ledger/instance-events/" {
  policy = "write"
}
key_prefix "gce-ilb-orchestrator/instance-events/" {
  policy = "write"
}
key_prefix "gce-ilb-orchestrator/draining/" {
  policy = "write"
}
