/**
 * The membership bench's baseline: a tutorial-style template, consul-template restarting a
 * daemonized HAProxy.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  repoRoot,
  startProcess,
  tcpOpen,
  toolPath,
  type ConsulCluster,
  type ManagedProcess,
} from '../../infra-scripts/local/launch';
import { nodeMetaKeys, services } from '../../shared/contract';

/** Starts it on `ip`; returns its directory (admin socket `admin.sock`), cleaned up by `cleanups`. */
export async function startTutorial(
  ip: string,
  cluster: ConsulCluster,
  cleanups: (() => Promise<unknown>)[],
): Promise<string> {
  const agent = await cluster.startClient({
    nodeName: 'haproxy-tutorial',
    ip,
    nodeMeta: { [nodeMetaKeys.role]: 'haproxy' },
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ilb-tutorial-'));
  const fixtures = path.join(repoRoot(), 'bench', 'fixtures');
  const env = {
    ...process.env,
    BENCH_DIR: dir,
    HAPROXY: toolPath('haproxy'),
    ILB_BIND_ADDR: ip,
    CONSUL_HTTP_ADDR: agent.httpAddr,
    CONSUL_HTTP_TOKEN: cluster.token,
  };
  const template = `${path.join(fixtures, 'tutorial-haproxy.cfg.ctmpl')}:${path.join(dir, 'haproxy.cfg')}:${path.join(fixtures, 'tutorial-restart.sh')}`;
  const ct: ManagedProcess = await startProcess({
    name: 'consul-template (tutorial)',
    command: toolPath('consul-template'),
    args: [`-template=${template}`, '-wait=1s:4s'],
    env,
    ready: () => tcpOpen(ip, services.haproxy.port),
  });
  cleanups.push(async () => {
    await ct.stop('SIGINT');
    const pid = Number((await readFile(path.join(dir, 'haproxy.pid'), 'utf8').catch(() => '')).trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}
