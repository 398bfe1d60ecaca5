# Consul ACL policy for the token of the `instanceEvents` Cloud Function (least privilege).
# Create it with:
#   consul acl policy create -name instance-events -rules @infra-scripts/acl/instance-events.hcl
#   consul acl token create -description "fn instanceEvents" -policy-name instance-events
# and hand the token to the function as CONSUL_HTTP_TOKEN (a Secret Manager secret mounted as an
# env var) or CONSUL_HTTP_TOKEN_FILE (mounted as a file).
#
# What each rule is for (there is no service rule: maintenance and deletion act on the node,
# and its services follow):
# - node write: read a node's identity metadata, delete it with `/v1/txn` delete-cas, register
#   and remove the fallback drain check on it, and enable/disable maintenance on the node's own
#   agent (`/v1/agent/maintenance` needs node:write on that agent's node name).
node_prefix "" {
  policy = "write"
}
# Consul servers are never departed instances of a MIG this function drains or deregisters:
# the longer prefix wins, so their nodes stay read-only for this token.
node_prefix "consul-" {
  policy = "read"
}
# agent read: `/v1/agent/self` on a node's agent, to check it is the instance before draining it.
agent_prefix "" {
  policy = "read"
}
# operator write: `/v1/agent/force-leave/<node>?prune`, so the leader does not register a failed
# gossip member again after its catalog entry was deleted. Consul has no narrower permission
# for force-leave.
operator = "write"
# The function's state: its idempotency ledger and per-instance records (maintenance it set).
key_prefix "gce-ilb-orchestrator/ledger/instance-events/" {
  policy = "write"
}
key_prefix "gce-ilb-orchestrator/instance-events/" {
  policy = "write"
}
