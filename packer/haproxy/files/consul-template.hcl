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

# Quiescence: a burst of membership changes becomes one render and one runtime-API apply.
wait {
  min = "1s"
  max = "4s"
}

template {
  source          = "/etc/consul-template/haproxy.cfg.ctmpl"
  destination     = "/etc/haproxy/haproxy.cfg"
  perms           = 0640
  command         = ["/usr/bin/node", "/opt/ilb/app/dist/services/haproxy-sync/main.js", "--config", "/etc/haproxy/haproxy.cfg", "--admin-socket", "/run/haproxy/admin.sock", "--master-socket", "/run/haproxy/master.sock", "--haproxy", "/usr/sbin/haproxy"]
  command_timeout = "60s"
}
