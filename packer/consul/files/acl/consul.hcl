# Consul servers' agent token: their own nodes, and the reads a server agent does.
node_prefix "consul-" {
  policy = "write"
}
agent_prefix "consul-" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
