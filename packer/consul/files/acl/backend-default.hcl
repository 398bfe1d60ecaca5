# Requests to a backend's agent without a token: the app reads its node identity, nothing else.
agent_prefix "backend-" {
  policy = "read"
}
