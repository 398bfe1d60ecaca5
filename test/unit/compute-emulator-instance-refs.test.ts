import { checkInstanceRefs } from '../../infra-scripts/local/compute-emulator/instance-refs';
import type { Igm, Slot } from '../../infra-scripts/local/compute-emulator/state';

const slot = (name: string, zone: string, extra: Partial<Slot> = {}): Slot => ({
  name,
  zone,
  action: 'NONE',
  want: 'keep',
  ...extra,
});

const igm: Igm = {
  id: '1',
  name: 'backend',
  scope: { kind: 'regions', name: 'us-central1' },
  description: '',
  baseInstanceName: 'backend',
  instanceTemplate: 't',
  targetSize: 3,
  fingerprint: 'f',
  creationTimestamp: '',
  zones: ['us-central1-a', 'us-central1-b'],
  slots: [
    slot('backend-a1', 'us-central1-a'),
    slot('backend-b1', 'us-central1-b'),
    slot('backend-gone', 'us-central1-a', { want: 'delete', action: 'DELETING' }),
  ],
};
const project = { id: 'ilb-test', number: '123456789012' };
const names = (refs: string[]) => checkInstanceRefs(refs, igm, project).slots.map((s) => s.name);

describe('checkInstanceRefs', () => {
  it('accepts a full URL, a partial path with the project id or number, a zone path and a bare name', () => {
    expect(
      names([
        'https://www.googleapis.com/compute/v1/projects/ilb-test/zones/us-central1-a/instances/backend-a1',
        'projects/123456789012/zones/us-central1-b/instances/backend-b1',
      ]),
    ).toEqual(['backend-a1', 'backend-b1']);
    expect(names(['zones/us-central1-a/instances/backend-a1'])).toEqual(['backend-a1']);
    expect(names(['backend-b1', 'backend-b1'])).toEqual(['backend-b1']);
  });

  it('a non-member or a member already leaving is skippable; the members are still listed', () => {
    const r = checkInstanceRefs(['backend-a1', 'stranger', 'backend-gone'], igm, project);
    expect(r.slots.map((s) => s.name)).toEqual(['backend-a1']);
    expect(r.fatal).toEqual([]);
    expect(r.skippable).toHaveLength(2);
  });

  it.each([
    ['another project', 'projects/other/zones/us-central1-a/instances/backend-a1'],
    ['a zone outside the group', 'zones/us-central1-c/instances/backend-a1'],
    ['a malformed path', 'zones/us-central1-a/disks/backend-a1'],
    ['an invalid name', 'Backend_A1'],
    ['path traversal', 'zones/us-central1-a/instances/../x'],
  ])('%s always fails', (_what, ref) => {
    const r = checkInstanceRefs([ref], igm, project);
    expect(r.fatal).toHaveLength(1);
    expect(r.slots).toEqual([]);
  });

  it('URLs and names are not mixed in one request', () => {
    expect(
      checkInstanceRefs(['backend-a1', 'zones/us-central1-b/instances/backend-b1'], igm, project).fatal,
    ).toHaveLength(1);
  });
});
