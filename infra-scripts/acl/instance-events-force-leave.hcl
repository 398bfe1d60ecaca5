# Consul ACL policy for the force-leave token of the `instanceEvents` Cloud Function, held apart
# from its main token (CONSUL_FORCE_LEAVE_TOKEN or CONSUL_FORCE_LEAVE_TOKEN_FILE) and used for
# `/v1/agent/force-leave/<node>?prune` only, so the leader does not register a failed gossip member
# again after its catalog entry was deleted. Consul has no narrower permission for force-leave:
#   consul acl policy create -name instance-events-force-leave -rules @infra-scripts/acl/instance-events-force-leave.hcl
#   consul acl token create -description "fn instanceEvents force-leave" -policy-name instance-events-force-leave
# Without it the function still deregisters; a failed member is then reaped by Consul after its
# reconnect timeout instead.
operator = "write"
