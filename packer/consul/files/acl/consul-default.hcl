# Requests to a server's agent without a token, DNS included: read the catalog.
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
