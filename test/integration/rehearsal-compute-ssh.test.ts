/**
 * `gcloud compute ssh` against the Compute emulator, as the deploy's ACL step runs it: the real gcloud
 * adds its new key to the project's metadata and, when that update fails, to the instance's
 * (instances.setMetadata with the fingerprint it read). A rehearsal once failed there: the project
 * update failed and the emulator served no instances.setMetadata, which Compute has.
 */
import { spawn } from 'node:child_process';

import { sameFingerprint } from '../../infra-scripts/local/compute-emulator/errors';
import { metadataFingerprint } from '../../infra-scripts/local/compute-emulator/views';
import { startRehearsal, type Rehearsal } from '../rehearsal/harness';

const facts = { project: 'demo-project', projectNumber: '123456789012' };
const zone = 'us-central1-a';
const P = ['--project', facts.project];
let r: Rehearsal;

function gcloud(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('gcloud', args, { env: r.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
    child.stdin.end('');
  });
}

beforeAll(async () => {
  r = await startRehearsal({ facts, zones: [zone], modules: [] });
});
afterAll(() => r.stop());

/**
 * A role value whose metadata fingerprint holds `+` or `/`: gcloud sends it back URL-safe (`-`, `_`),
 * which Compute accepts, so the emulator must too (a rehearsal failed on exactly that).
 */
const role = Array.from({ length: 200 }, (_, i) => `consul-${i}`).find((v) =>
  /[+/]/.test(metadataFingerprint([{ key: 'role', value: v }])),
)!;

it('compares fingerprints as bytes, in either base64 alphabet', () => {
  const fp = metadataFingerprint([{ key: 'role', value: role }]);
  expect(fp).toMatch(/[+/]/);
  expect(sameFingerprint(fp.replace(/\+/g, '-').replace(/\//g, '_'), fp)).toBe(true);
  expect(sameFingerprint(metadataFingerprint([]), fp)).toBe(false);
});

const keysOf = (items: { key: string; value: string }[]) =>
  items.filter((m) => m.key === 'ssh-keys').map((m) => m.value);

it('falls back to the instance metadata when the project metadata update fails', async () => {
  const created = await gcloud([
    'compute',
    'instances',
    'create',
    'consul-ilb-0',
    `--zone=${zone}`,
    '--image-family=ilb-consul',
    `--image-project=${facts.project}`,
    `--metadata=role=${role}`,
    ...P,
  ]);
  expect(created).toMatchObject({ code: 0 });

  r.compute.failOnce('POST', /\/setCommonInstanceMetadata$/);
  const ssh = await gcloud([
    'compute',
    'ssh',
    'consul-ilb-0',
    `--zone=${zone}`,
    '--tunnel-through-iap',
    '--command=true',
    '--quiet',
    ...P,
  ]);
  expect(ssh.out).toContain('Updating project ssh metadata');
  expect(ssh.out).toContain('Updating instance ssh metadata');
  expect(ssh.code === 0 ? 'exit 0' : ssh.out).toBe('exit 0');
  expect(r.ssh().length).toBeGreaterThan(0);

  const described = await gcloud([
    'compute',
    'instances',
    'describe',
    'consul-ilb-0',
    `--zone=${zone}`,
    '--format=json(metadata)',
    ...P,
  ]);
  const items = (JSON.parse(described.out) as { metadata: { items: { key: string; value: string }[] } })
    .metadata.items;
  expect(keysOf(items)).toEqual([expect.stringMatching(/^rehearsal:ssh-rsa /)]);
  expect(items.find((m) => m.key === 'role')?.value).toBe(role);
  expect(keysOf(r.compute.emulator.deploy.commonMetadataItems())).toEqual([]);
}, 120_000);
