# Consul ACL policy for the token of the `healthSweep` Cloud Function (least privilege).
# Create it with:
#   consul acl policy create -name health-sweep -rules @infra-scripts/acl/health-sweep.hcl
#   consul acl token create -description "fn healthSweep" -policy-name health-sweep
# and hand the token to the function as CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE.
# What a stolen token can do: shared/health-sweep/README.md.
#
# node write: read every node's identity metadata and checks, and delete a stale node with
# `/v1/txn` delete-cas on its ModifyIndex (instanceEvents' deregistration path).
node_prefix "" {
  policy = "write"
}
# Consul servers are never members of a watched group: their nodes stay read-only.
node_prefix "consul-" {
  policy = "read"
}
# service read: `/v1/health/state/any` returns a service's checks only to a token that may read
# the service.
service_prefix "" {
  policy = "read"
}
# session write: the sweep lock's session (`/v1/session/create` names the node of the agent that
# answers, which the function cannot know in advance).
session_prefix "" {
  policy = "write"
}
# operator write: `/v1/agent/force-leave/<node>?prune` after the delete, so the leader does not
# register the failed gossip member again. Consul has no narrower permission for force-leave.
operator = "write"
# The sweep's own state: marks, token bucket, lock.
key_prefix "gce-ilb-orchestrator/health-sweep/" {
  policy = "write"
}
# Leftovers it reaps: instanceEvents' records of instances that are gone (delete by CAS) and the
# ledger's day folders past retention.
key_prefix "gce-ilb-orchestrator/instance-events/instances/" {
  policy = "write"
}
key_prefix "gce-ilb-orchestrator/ledger/instance-events/" {
  policy = "write"
}
