// Test-facing entry to the launchers of real local services (Consul, pstest, HAProxy, dnsmasq).
// Each start* returns a handle with stop(); jest-env.ts also stops whatever a test file left running.
export * from '../../infra-scripts/local/launch';
