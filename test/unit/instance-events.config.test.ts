import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../shared/config';

describe('loadConfig', () => {
  it("defaults to Consul's own defaults and a live, non-dry run", () => {
    const config = loadConfig({});
    expect(config.consul).toMatchObject({
      baseUrl: 'http://127.0.0.1:8500',
      token: undefined,
      tls: { rejectUnauthorized: true },
      agentPort: 8500,
    });
    expect(config).toMatchObject({ dryRun: false, kvPrefix: 'gce-ilb-orchestrator/', compute: {} });
  });

  it("reads Consul's standard variables", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ie-config-'));
    writeFileSync(path.join(dir, 'ca.pem'), 'PEM');
    writeFileSync(path.join(dir, 'token'), 'secret-from-file\n');
    const config = loadConfig({
      CONSUL_HTTP_ADDR: 'consul.internal:8501',
      CONSUL_HTTP_SSL: 'true',
      CONSUL_CACERT: path.join(dir, 'ca.pem'),
      CONSUL_HTTP_SSL_VERIFY: 'false',
      CONSUL_TLS_SERVER_NAME: 'server.dc1.consul',
      CONSUL_HTTP_TOKEN_FILE: path.join(dir, 'token'),
    });
    expect(config.consul).toMatchObject({
      baseUrl: 'https://consul.internal:8501',
      token: 'secret-from-file',
      tls: { ca: 'PEM', rejectUnauthorized: false, serverName: 'server.dc1.consul' },
    });
  });

  it('prefers CONSUL_HTTP_TOKEN, keeps an explicit scheme and treats empty variables as unset', () => {
    const config = loadConfig({
      CONSUL_HTTP_ADDR: 'http://10.0.0.5:8500',
      CONSUL_HTTP_SSL: 'true',
      CONSUL_HTTP_TOKEN: 't',
      DRY_RUN: '',
    });
    expect(config.consul.baseUrl).toBe('http://10.0.0.5:8500');
    expect(config.consul.token).toBe('t');
    expect(config.dryRun).toBe(false);
  });

  it('turns COMPUTE_API_ENDPOINT into client options for an emulator', () => {
    expect(loadConfig({ COMPUTE_API_ENDPOINT: 'http://127.0.0.1:9090' }).compute).toEqual({
      apiEndpoint: '127.0.0.1',
      port: 9090,
      protocol: 'http',
    });
    expect(loadConfig({ DRY_RUN: 'true', GOOGLE_CLOUD_PROJECT: 'ilb-demo' })).toMatchObject({
      dryRun: true,
      project: 'ilb-demo',
    });
  });

  it.each([
    [{ DRY_RUN: 'maybe' }, /DRY_RUN/],
    [{ CONSUL_HTTP_SSL: 'yes please' }, /CONSUL_HTTP_SSL/],
    [{ ORCHESTRATOR_CONSUL_TIMEOUT_MS: '-5' }, /ORCHESTRATOR_CONSUL_TIMEOUT_MS/],
    [{ COMPUTE_API_ENDPOINT: 'ftp://x' }, /COMPUTE_API_ENDPOINT/],
    [{ ORCHESTRATOR_KV_PREFIX: '/abs' }, /ORCHESTRATOR_KV_PREFIX/],
    [{ CONSUL_HTTP_ADDR: 'unix:///var/run/consul.sock' }, /only http and https/],
    [{ CONSUL_CACERT: '/nonexistent/ca.pem' }, /CONSUL_CACERT: cannot read/],
  ])('rejects %j with a clear error', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('reads the separately held force-leave token, from the environment or a file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ie-config-'));
    writeFileSync(path.join(dir, 'operator'), 'operator-secret\n');
    expect(loadConfig({}).forceLeaveToken).toBeUndefined();
    expect(loadConfig({ CONSUL_FORCE_LEAVE_TOKEN: 'op' }).forceLeaveToken).toBe('op');
    const fromFile = loadConfig({ CONSUL_FORCE_LEAVE_TOKEN_FILE: path.join(dir, 'operator') });
    expect(fromFile.forceLeaveToken).toBe('operator-secret');
    // Never the main token's value, nor the other way round.
    expect(fromFile.consul.token).toBeUndefined();
  });
});
