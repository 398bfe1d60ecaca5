import { createMetadataServer, type MetadataServer } from '../../infra-scripts/local/metadata-server';
import { createMetadataClient } from '../../services/lib/gce-metadata';

const ip = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.7`;
const bigId = '5918277353124567891';

let md: MetadataServer;
let host: string;

beforeAll(async () => {
  md = createMetadataServer({ port: 0 });
  host = await md.addInstance({
    id: bigId,
    name: 'backend-x1z',
    zone: 'us-central1-b',
    ip,
    projectId: 'demo-proj',
    projectNumber: '424242',
    machineType: 'e2-small',
    tags: ['backend', 'ilb'],
    attributes: { 'created-by': 'projects/424242/zones/us-central1-b/instanceGroupManagers/backend-mig' },
  });
});
afterAll(() => md.stop());

const get = (path: string, headers: Record<string, string> = { 'Metadata-Flavor': 'Google' }) =>
  fetch(`http://${host}/computeMetadata/v1/${path}`, { headers });

describe('metadata server stand-in', () => {
  it('refuses requests without Metadata-Flavor: Google and flags every answer', async () => {
    const refused = await get('instance/id', {});
    expect(refused.status).toBe(403);
    expect(refused.headers.get('metadata-flavor')).toBe('Google');
    const ok = await get('instance/id');
    expect(ok.headers.get('metadata-flavor')).toBe('Google');
    expect(await ok.text()).toBe(bigId);
  });

  it('serves the kebab-case leaves GCE serves', async () => {
    expect(await (await get('instance/zone')).text()).toBe('projects/424242/zones/us-central1-b');
    expect(await (await get('instance/machine-type')).text()).toBe('projects/424242/machineTypes/e2-small');
    expect(await (await get('instance/network-interfaces/0/ip')).text()).toBe(ip);
    expect(await (await get('project/project-id')).text()).toBe('demo-proj');
    expect(await (await get('instance/attributes/created-by')).text()).toContain(
      'instanceGroupManagers/backend-mig',
    );
    expect(await (await get('instance/tags')).json()).toEqual(['backend', 'ilb']);
    expect(await (await get('instance/hostname')).text()).toBe(
      'backend-x1z.us-central1-b.c.demo-proj.internal',
    );
    expect(await (await get('instance/name?alt=json')).json()).toBe('backend-x1z');
    expect((await get('instance/nope')).status).toBe(404);
  });

  it('answers recursive JSON in camelCase with the id as a bare number, and text on request', async () => {
    const body = await (await get('instance/?recursive=true')).text();
    expect(body).toContain(`"id":${bigId}`);
    const parsed = JSON.parse(body) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      name: 'backend-x1z',
      machineType: 'projects/424242/machineTypes/e2-small',
      networkInterfaces: [{ ip }],
      attributes: { 'created-by': expect.stringContaining('backend-mig') },
    });
    const text = await (await get('instance/?recursive=true&alt=text')).text();
    expect(text).toContain(`network-interfaces/0/ip ${ip}\n`);
    expect(await (await get('instance/')).text()).toContain('attributes/\n');
  });

  it('lets attributes change while the instance runs', async () => {
    md.setAttributes(ip, { 'shutdown-reason': 'test' });
    expect(await (await get('instance/attributes/shutdown-reason')).text()).toBe('test');
    md.setAttributes(ip, { 'shutdown-reason': null });
    expect((await get('instance/attributes/shutdown-reason')).status).toBe(404);
  });
});

describe('metadata client', () => {
  it('reads the identity exactly, including an id beyond 2^53', async () => {
    const identity = await createMetadataClient({ host }).identity();
    expect(identity).toEqual({
      id: bigId,
      name: 'backend-x1z',
      hostname: 'backend-x1z.us-central1-b.c.demo-proj.internal',
      zone: 'us-central1-b',
      project: 'demo-proj',
      internalIp: ip,
      machineType: 'e2-small',
      tags: ['backend', 'ilb'],
      instanceGroup: 'backend-mig',
    });
  });

  it('caches the answer for its TTL only', async () => {
    let now = 0;
    const client = createMetadataClient({ host, cacheMs: 1_000, now: () => now });
    expect((await client.identity()).instanceGroup).toBe('backend-mig');
    md.setAttributes(ip, {
      'created-by': 'projects/424242/zones/us-central1-b/instanceGroupManagers/other-mig',
    });
    now = 999;
    expect((await client.identity()).instanceGroup).toBe('backend-mig');
    now = 1_000;
    expect((await client.identity()).instanceGroup).toBe('other-mig');
    md.setAttributes(ip, { 'created-by': null });
    now = 5_000;
    expect((await client.identity()).instanceGroup).toBe('');
  });

  it('rejects a server that is not a metadata server', async () => {
    await expect(createMetadataClient({ host: `${ip}:1` }).identity()).rejects.toThrow();
  });
});
