# backend agents: their own node (names start with the MIG's base name `backend-`) and service.
node_prefix "backend-" {
  policy = "write"
}
agent_prefix "backend-" {
  policy = "write"
}
service "backend" {
  policy = "write"
}
