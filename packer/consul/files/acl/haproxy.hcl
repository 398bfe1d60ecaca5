# haproxy agents: their own node and service; consul-template reads the healthy backends.
node_prefix "haproxy-" {
  policy = "write"
}
agent_prefix "haproxy-" {
  policy = "write"
}
service "haproxy-internal" {
  policy = "write"
}
service "backend" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
