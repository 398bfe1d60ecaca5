# Requests to an HAProxy node's agent without a token: consul-template reads the healthy backends
# and the drain list.
service "backend" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
# consul-template renders the drain list the instanceEvents function writes (read only, this prefix only).
key_prefix "gce-ilb-orchestrator/draining/" {
  policy = "read"
}
