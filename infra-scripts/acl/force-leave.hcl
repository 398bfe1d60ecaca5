# Consul ACL policy for the force-leave tokens of the `instanceEvents` and `healthSweep` Cloud
# Functions, each held apart from its function's main token (CONSUL_FORCE_LEAVE_TOKEN or
# CONSUL_FORCE_LEAVE_TOKEN_FILE) and used for `/v1/agent/force-leave/<node>?prune` only, so the
# leader does not register a failed gossip member again after its catalog entry was deleted.
# Consul has no narrower permission for force-leave:
#   consul acl policy create -name force-leave -rules @infra-scripts/acl/force-leave.hcl
#   consul acl token create -description "fn instanceEvents force-leave" -policy-name force-leave
#   consul acl token create -description "fn healthSweep force-leave" -policy-name force-leave
# One token per function, so either can be revoked alone. Without one the function still
# deregisters; a failed member is then reaped by Consul after its reconnect timeout instead.
operator = "write"
