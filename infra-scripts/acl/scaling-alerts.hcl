# Consul ACL policy for the token of the `scalingAlerts` Cloud Function (least privilege).
# Create it with:
#   consul acl policy create -name scaling-alerts -rules @infra-scripts/acl/scaling-alerts.hcl
#   consul acl token create -description "fn scalingAlerts" -policy-name scaling-alerts
# and hand the token to the function as CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE.
#
# The function only keeps its own record per autoscaler (leases, incidents seen closed, the
# original values of fields it overrode, recent change times), read and written by compare-and-set
# through /v1/kv and /v1/txn. It touches no node, service, agent or other key.
# What a stolen token can do: shared/scaling-alerts/README.md ("Consul token").
key_prefix "gce-ilb-orchestrator/scaling-alerts/autoscalers/" {
  policy = "write"
}
