# Requests to a frontend's agent without a token, DNS included: find the HAProxy tier.
service "haproxy-internal" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
