# Requests to an HAProxy node's agent without a token: consul-template reads the healthy backends.
service "backend" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
