import { readFileSync } from 'node:fs';

import { parseEnvFile, parseUnit, pathMapper, splitCommand } from '../../infra-scripts/local/instance';
import { toolPath } from '../../infra-scripts/local/launch/tools';

describe('instance launcher: systemd units as the images have them', () => {
  it('reads the shipped haproxy unit', () => {
    const unit = parseUnit('haproxy', readFileSync('packer/haproxy/files/haproxy.service', 'utf8'));
    expect(unit).toMatchObject({
      type: 'notify',
      environmentFiles: ['/etc/ilb/instance.env'],
      killSignal: 'SIGUSR1',
      execStart: '/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg.applied -S /run/haproxy/master.sock',
    });
    // The config waited for, then checked by haproxy-sync (`haproxy -c`) before HAProxy runs it.
    expect(unit.execStartPre).toHaveLength(3);
    expect(unit.execStartPre[2]).toContain('haproxy-sync/main.js --prepare');
    const oneshot = parseUnit('ilb-drain', readFileSync('packer/consul/files/ilb-drain.service', 'utf8'));
    expect(oneshot).toMatchObject({ type: 'oneshot', execStop: '/opt/ilb/bin/shutdown.sh' });
  });

  it('splits command lines as systemd does: quotes, ${VAR}, $VAR, $$', () => {
    const env = { ILB_BIND_ADDR: '127.1.2.3', X: 'x' };
    expect(splitCommand('/usr/bin/node main.js --host ${ILB_BIND_ADDR} --port 8080', env)).toEqual([
      '/usr/bin/node',
      'main.js',
      '--host',
      '127.1.2.3',
      '--port',
      '8080',
    ]);
    expect(splitCommand(`-/bin/sh -c 'until [ -s /f ]; do sleep 0.2; done' $X $$HOME "a b"`, env)).toEqual([
      '/bin/sh',
      '-c',
      'until [ -s /f ]; do sleep 0.2; done',
      'x',
      '$HOME',
      'a b',
    ]);
    expect(splitCommand('/bin/true ${MISSING}', env)).toEqual(['/bin/true']);
  });

  it('reads environment files', () => {
    expect(parseEnvFile('A=1\n# c\nB="two words"\n\nbad line\n')).toEqual({ A: '1', B: 'two words' });
  });

  it('maps image paths into the instance root and to the local tools, once', () => {
    const map = pathMapper('/tmp/r');
    expect(map('/usr/local/bin/consul agent -config-dir=/etc/consul.d')).toBe(
      `${toolPath('consul')} agent -config-dir=/tmp/r/etc/consul.d`,
    );
    expect(map('"/usr/bin/node", "/opt/ilb/app/dist/x.js", "/run/haproxy/a.sock", "/opt/consul/data"')).toBe(
      `"${process.execPath}", "${process.cwd()}/dist/x.js", "/tmp/r/run/haproxy/a.sock", "/tmp/r/opt/consul/data"`,
    );
    expect(map('/tmp/r/etc/x and /var/etc/y')).toBe('/tmp/r/etc/x and /var/etc/y');
  });
});
