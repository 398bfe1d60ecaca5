import { parseHealthSweepConfig } from '../../shared/health-sweep/config';
import {
  idFromKey,
  isInstanceId,
  normaliseManagedInstances,
  normaliseNodes,
  parseBucket,
  parseIdentity,
  parseMark,
  parseDrain,
  nodeFromDrainKey,
} from '../../shared/health-sweep/observe';

const groups = parseHealthSweepConfig({
  groups: [
    { project: 'ilb-demo', zone: 'us-central1-a', name: 'backend-a', role: 'backend' },
    { project: 'ilb-demo', region: 'us-central1', name: 'haproxy', role: 'haproxy' },
  ],
}).groups;
const zonal = groups[0]!;
const regional = groups[1]!;

const BIG = '18446744073709551615'; // 2^64 - 1: exact only as a string
const url = (zone: string, name: string, project = 'ilb-demo') =>
  `https://compute.googleapis.com/compute/v1/projects/${project}/zones/${zone}/instances/${name}`;

describe('normaliseManagedInstances', () => {
  it('keeps ids beyond 2^53 exact and reads the instance URL', () => {
    const { members, dropped } = normaliseManagedInstances(zonal, [
      {
        id: BIG,
        instance: url('us-central1-a', 'backend-a-1'),
        instanceStatus: 'RUNNING',
        currentAction: 'NONE',
      },
    ]);
    expect(dropped).toBe(0);
    expect(members).toEqual([
      {
        id: BIG,
        name: 'backend-a-1',
        project: 'ilb-demo',
        zone: 'us-central1-a',
        instance: url('us-central1-a', 'backend-a-1'),
        instanceStatus: 'RUNNING',
        currentAction: 'NONE',
      },
    ]);
  });

  it('keeps a member that does not exist yet (no id, no status)', () => {
    const { members } = normaliseManagedInstances(regional, [
      { instance: url('us-central1-f', 'haproxy-x'), currentAction: 'CREATING' },
    ]);
    expect(members).toEqual([
      {
        name: 'haproxy-x',
        project: 'ilb-demo',
        zone: 'us-central1-f',
        instance: url('us-central1-f', 'haproxy-x'),
        currentAction: 'CREATING',
      },
    ]);
  });

  it('accepts an exact numeric id and a missing action (NONE)', () => {
    const { members } = normaliseManagedInstances(zonal, [
      { id: 12345, instance: url('us-central1-a', 'b'), instanceStatus: 'RUNNING' },
    ]);
    expect(members[0]).toMatchObject({ id: '12345', currentAction: 'NONE' });
  });

  it.each([
    ['an id beyond 2^53 as a number (precision lost)', { id: 2 ** 60 }],
    ['an id that is not a number', { id: '12a' }],
    ['an id beyond uint64', { id: '18446744073709551616' }],
    ['an instance in another zone', { instance: url('us-central1-b', 'b') }],
    ['an instance in another project', { instance: url('us-central1-a', 'b', 'other-proj') }],
    ['a URL that is no instance', { instance: 'https://example.com/x' }],
    ['a bad name', { instance: url('us-central1-a', 'B..') }],
    ['no instance', { instance: undefined }],
  ])('drops and counts %s', (_what, patch) => {
    const entry = { id: '1', instance: url('us-central1-a', 'b'), instanceStatus: 'RUNNING', ...patch };
    expect(normaliseManagedInstances(zonal, [entry, 'junk'])).toEqual({ members: [], dropped: 2 });
  });

  it('a regional group holds the zones of its region only', () => {
    const { members, dropped } = normaliseManagedInstances(regional, [
      { id: '1', instance: url('us-central1-c', 'h1') },
      { id: '2', instance: url('europe-west1-b', 'h2') },
    ]);
    expect(members.map((m) => m.name)).toEqual(['h1']);
    expect(dropped).toBe(1);
  });
});

describe('normaliseNodes', () => {
  const meta = {
    'gce-instance-id': BIG,
    'gce-zone': 'us-central1-a',
    'gce-project': 'ilb-demo',
    'gce-instance-group': 'backend-a',
    role: 'backend',
  };
  const catalog = (name: string, m: Record<string, string> | null = meta) => ({
    Node: name,
    Address: '10.0.0.2',
    Meta: m,
    ModifyIndex: 12,
  });
  const check = (nodeName: string, CheckID: string, Status: string, ServiceID = '') => ({
    Node: nodeName,
    CheckID,
    Status,
    ServiceID,
  });

  it('joins identity and health in one pass over both lists', () => {
    const { nodes, dropped } = normaliseNodes(
      [catalog('a'), catalog('b'), catalog('c'), catalog('d'), catalog('e')],
      [
        check('a', 'serfHealth', 'passing'),
        check('a', 'service:backend', 'passing', 'backend'),
        check('b', 'serfHealth', 'passing'),
        check('b', 'service:backend', 'critical', 'backend'),
        check('c', 'service:backend', 'warning', 'backend'),
        check('d', '_node_maintenance', 'critical'),
        check('d', 'serfHealth', 'critical'),
        check('e', 'serfHealth', 'whatever'),
      ],
    );
    expect(dropped).toBe(0);
    expect(nodes.map((n) => [n.name, n.health])).toEqual([
      ['a', 'passing'],
      ['b', 'critical'],
      ['c', 'warning'],
      ['d', 'maintenance'],
      ['e', 'critical'],
    ]);
    expect(nodes[0]).toEqual({
      name: 'a',
      address: '10.0.0.2',
      modifyIndex: 12,
      identity: {
        instanceId: BIG,
        zone: 'us-central1-a',
        project: 'ilb-demo',
        group: 'backend-a',
        role: 'backend',
      },
      health: 'passing',
      serf: 'passing',
      foreignChecks: 0,
    });
  });

  it('a check no agent of ours registers never makes a node critical; it is counted', () => {
    const { nodes } = normaliseNodes(
      [catalog('a'), catalog('b')],
      [
        check('a', 'serfHealth', 'passing'),
        check('a', 'service:backend', 'passing', 'backend'),
        check('a', 'evil', 'critical'),
        check('a', 'alive', 'critical', 'backend'),
        check('b', 'service:backend', 'passing', 'backend'),
      ],
    );
    expect(nodes.map((n) => [n.name, n.health, n.serf, n.foreignChecks])).toEqual([
      ['a', 'passing', 'passing', 2],
      ['b', 'passing', 'absent', 0],
    ]);
  });

  it('a service in maintenance makes the node draining, whatever else fails', () => {
    const { nodes } = normaliseNodes(
      [catalog('a')],
      [
        check('a', 'service:backend', 'critical', 'backend'),
        check('a', '_service_maintenance:backend', 'critical'),
      ],
    );
    expect(nodes.map((n) => n.health)).toEqual(['maintenance']);
  });

  it('drops entries that do not parse and counts them', () => {
    const { nodes, dropped } = normaliseNodes(
      [catalog('a'), { Node: 'b' }, null],
      [check('a', 'serfHealth', 'passing'), { Node: 'a' }],
    );
    expect(nodes.map((n) => n.name)).toEqual(['a']);
    expect(dropped).toBe(3);
  });

  it.each([
    ['no metadata', null],
    ['no instance id', { ...meta, 'gce-instance-id': '' }],
    ['an id that is not a number', { ...meta, 'gce-instance-id': '1 OR 1' }],
    ['a zone with a path', { ...meta, 'gce-zone': 'us-central1-a/../b' }],
    ['no group', { ...meta, 'gce-instance-group': undefined as unknown as string }],
    ['a role with spaces', { ...meta, role: 'back end' }],
  ])('a node with %s has no identity', (_what, m) => {
    const { nodes } = normaliseNodes([catalog('x', m && JSON.parse(JSON.stringify(m)))], []);
    expect(nodes).toHaveLength(1);
    expect(nodes[0]?.identity).toBeUndefined();
  });

  it('does not read identity from the prototype', () => {
    const inherited = Object.create(meta) as Record<string, string>;
    expect(parseIdentity(inherited)).toBeUndefined();
  });
});

describe('stored values', () => {
  it('parses marks, and rejects anything else', () => {
    expect(parseMark('{"absentCount":2,"criticalSince":5}')).toEqual({ absentCount: 2, criticalSince: 5 });
    expect(parseMark('{"absentCount":-1}')).toBeNull();
    expect(parseMark('{"absentCount":1,"extra":true}')).toBeNull();
    expect(parseMark('not json')).toBeNull();
  });

  it('parses the bucket', () => {
    expect(parseBucket('{"tokens":1.5,"at":3}')).toEqual({ tokens: 1.5, at: 3 });
    expect(parseBucket('{"tokens":"9"}')).toBeNull();
  });

  it('parses a drain list entry, and only a well-formed one', () => {
    expect(parseDrain(`{"instanceId":"${BIG}","since":5}`)).toEqual({ instanceId: BIG, since: 5 });
    expect(parseDrain('{"instanceId":"12x","since":5}')).toBeNull();
    expect(parseDrain(`{"instanceId":"${BIG}"}`)).toBeNull();
    expect(parseDrain('{')).toBeNull();
    const prefix = 'gce-ilb-orchestrator/draining/';
    expect(nodeFromDrainKey(prefix, `${prefix}backend-a-1`)).toBe('backend-a-1');
    expect(nodeFromDrainKey(prefix, `${prefix}Backend/x`)).toBeUndefined();
    expect(nodeFromDrainKey(prefix, 'other/backend-a-1')).toBeUndefined();
  });

  it('takes ids from keys under a prefix only', () => {
    const prefix = 'gce-ilb-orchestrator/health-sweep/instances/';
    expect(idFromKey(prefix, `${prefix}${BIG}`)).toBe(BIG);
    expect(idFromKey(prefix, `${prefix}12/x`)).toBeUndefined();
    expect(idFromKey(prefix, `other/${BIG}`)).toBeUndefined();
    expect(isInstanceId('007')).toBe(true);
    expect(isInstanceId('')).toBe(false);
  });
});
