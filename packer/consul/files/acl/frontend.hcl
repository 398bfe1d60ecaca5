# frontend agents: their own node and service; DNS (through dnsmasq) reads the HAProxy tier.
node_prefix "frontend-" {
  policy = "write"
}
agent_prefix "frontend-" {
  policy = "write"
}
service "frontend" {
  policy = "write"
}
service "haproxy-internal" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
