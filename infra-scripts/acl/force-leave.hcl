# Consul ACL policy for the force-leave token of the `instanceEvents` Cloud Function, the only
# function holding one (functions/catalog.ts `forceLeave`; test/attack/functions.test.ts checks
# that no other deployed entry point's token may force-leave). Held apart from its main token
# (CONSUL_FORCE_LEAVE_TOKEN or CONSUL_FORCE_LEAVE_TOKEN_FILE) and used for
# `/v1/agent/force-leave/<node>?prune` only, after Compute confirmed the instance gone, so a
# deleted instance's member leaves gossip before its group recreates the name. Consul has no
# narrower permission for force-leave (`operator = "write"` also allows Raft peer removal):
#   consul acl policy create -name force-leave -rules @infra-scripts/acl/force-leave.hcl
#   consul acl token create -description "fn instanceEvents force-leave" -policy-name force-leave
# healthSweep holds none: a failed member it deregisters is reaped by the servers after the
# agent's `advertise_reconnect_timeout` (set on every client agent), critical and unrouted meanwhile.
operator = "write"
