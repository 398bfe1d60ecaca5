# The Consul address and token come from the environment (CONSUL_HTTP_ADDR in /etc/ilb/instance.env;
# no token: the local agent's default token, the haproxy-default policy: it reads the backend
# service, the nodes and the drain list gce-ilb-orchestrator/draining/).
log_level = "info"

consul {
  retry {
    enabled     = true
    attempts    = 0
    backoff     = "250ms"
    max_backoff = "5s"
  }
}

# Quiescence kept short: the few blocking-query answers of one change (service, checks, node) become
# one render. haproxy-sync.service coalesces whatever follows, so no wait of seconds is needed.
wait {
  min = "20ms"
  max = "100ms"
}

template {
  source      = "/etc/consul-template/haproxy.cfg.ctmpl"
  destination = "/etc/haproxy/haproxy.cfg"
  perms       = 0640
  # No command: haproxy-sync.service watches this file (a fresh Node process per render cost ~1 s).
}
