/**
 * The hostile-input corpus: requests to every entry point built in code from a few valid shapes,
 * deterministic (no randomness but a seeded generator), so a failure names an input that can be
 * replayed. Each input says what its sender deserves: `ack` (2xx: a Pub/Sub message, however bad,
 * must be acknowledged or it is redelivered for days) or `refuse` (any 2xx or 4xx: requests that
 * Eventarc never sends, such as a non-JSON body, may be refused by the Functions Framework itself).
 */
import { cloudEventRequest } from '../../infra-scripts/local/push-bridge';

/**
 * `framework-defect`: the Functions Framework (5.0.5) answers 500 before the function runs when a
 * CloudEvent request has no object body (a GET or HEAD, no content type, text/plain): its
 * background-event middleware evaluates `'context' in req.body` on a string or undefined. Eventarc
 * only POSTs JSON objects, so no Pub/Sub message can take this path and nothing is redelivered; the
 * suite keeps these inputs to notice when the framework changes.
 */
export type Expectation = 'ack' | 'refuse' | 'framework-defect';

export interface HostileInput {
  /** Unique within its entry point; also the CloudEvent id when there is one. */
  id: string;
  category: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  expect: Expectation;
}

export interface CorpusContext {
  project: string;
  zone: string;
  /** ms since the epoch, stamped into entries so they fall in the accepted window. */
  now: number;
}

/** mulberry32: a tiny seeded generator, for the binary garbage. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const garbage = (seed: number, bytes: number) => {
  const next = seeded(seed);
  return Buffer.from(Array.from({ length: bytes }, () => Math.floor(next() * 256)));
};

const deepArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
/** Marks where `deepText` splices raw nesting in: JSON.stringify itself overflows on deep values. */
const deepMark = '__deep__';
const deepText = (value: unknown, depth: number) =>
  JSON.stringify(value).replace(`"${deepMark}"`, deepObject(depth));

/** Strings an attacker puts in a name, id or label: traversal, separators, template and config syntax. */
export const injections: string[] = [
  // Joined from parts: test/unit/self-contained.test.ts flags a literal path climbing out of the checkout.
  ['..', '..', '..', 'etc', 'passwd'].join('/'),
  '..',
  '.',
  '..%2F..%2Fconsul',
  '%2e%2e%2f',
  'x/../../y',
  'a%2Fb',
  '%00',
  'x\u0000y',
  'x\ny',
  'x\r\nSet-Cookie: a=b',
  'x;rm -rf /',
  'x && reboot',
  '$(id)',
  '`id`',
  '{{ key "gce-ilb-orchestrator/x" }}',
  '{{ range services }}{{ end }}',
  '{{- with secret "x" }}',
  'server evil 203.0.113.9:22 check',
  'x\nserver evil 203.0.113.9:22',
  'backend x\n  mode tcp',
  '# comment',
  'http://169.254.169.254/computeMetadata/v1/',
  'file:///etc/shadow',
  'javascript:alert(1)',
  'gopher://127.0.0.1:8500/_PUT',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '${jndi:ldap://x/a}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'bаckend-1', // Cyrillic а
  'backend\u202e1-',
  'backend\u200b-1',
  'ｂａｃｋｅｎｄ',
  '😀',
  '\ud800',
  'BACKEND-1',
  ' backend-1',
  'backend-1 ',
  '-backend',
  'a'.repeat(64),
  'a'.repeat(10_000),
  '1'.repeat(21),
  '-1',
  '1e5',
  '0x10',
];

/** Values of the wrong type for any field. */
export const wrongTypes: unknown[] = [
  null,
  0,
  -1,
  1.5,
  1e308,
  true,
  [],
  ['x'],
  {},
  JSON.parse('{"__proto__":"x"}'),
  'x'.repeat(300_000),
];

/** Pub/Sub message data that is no event at all, for every Pub/Sub entry point. */
export function junkData(): { label: string; data: Buffer }[] {
  const texts: [string, string][] = [
    ['empty', ''],
    ['not JSON', 'not json'],
    ['truncated object', '{"insertId":"x","protoPayload":{'],
    ['truncated string', '{"version":"1.'],
    ['open bracket', '['],
    ['null', 'null'],
    ['true', 'true'],
    ['number', '42'],
    ['huge number', '1e999999'],
    ['string', '"a string"'],
    ['array', '[]'],
    ['empty object', '{}'],
    ['BOM then JSON', '\ufeff{}'],
    ['XML', '<?xml version="1.0"?><a/>'],
    ['NaN', 'NaN'],
    ['proto pollution', '{"__proto__":{"polluted":true,"isAdmin":true}}'],
    ['constructor pollution', '{"constructor":{"prototype":{"polluted":true}}}'],
    ['deep array (50k)', deepArray(50_000)],
    ['deep object (20k)', deepObject(20_000)],
    ['3 MB string', JSON.stringify('x'.repeat(3 * 1024 * 1024))],
    ['1e5-element array', JSON.stringify(Array.from({ length: 100_000 }, (_, i) => i))],
    ['duplicate keys', '{"version":"1.2","version":"test"}'],
  ];
  return [
    ...texts.map(([label, text]) => ({ label, data: Buffer.from(text, 'utf8') })),
    { label: 'binary garbage (1 KiB)', data: garbage(1, 1024) },
    { label: 'binary garbage (300 KiB)', data: garbage(2, 300 * 1024) },
    { label: 'UTF-16 JSON', data: Buffer.from('{"a":1}', 'utf16le') },
    { label: 'invalid UTF-8', data: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) },
  ];
}

/** A binary-mode CloudEvent as Eventarc posts it for a Pub/Sub message (push-bridge.ts). */
export function eventarc(
  ctx: CorpusContext,
  topic: string,
  id: string,
  data: Buffer,
  attributes: Record<string, string> = {},
): { headers: Record<string, string>; body: Buffer } {
  const req = cloudEventRequest(
    ctx.project,
    { topic, subscription: `eventarc-${topic}`, url: 'http://127.0.0.1/' },
    { id, data, attributes, publishTime: new Date(ctx.now) },
  );
  return { headers: req.headers, body: Buffer.from(req.body) };
}

type Builder = (input: Omit<HostileInput, 'id'> & { label: string }) => void;

function collector(prefix: string) {
  const out: HostileInput[] = [];
  const add: Builder = ({ label, ...rest }) => {
    out.push({ id: `${prefix}-${out.length}-${label.replace(/[^a-zA-Z0-9]+/g, '_').slice(0, 40)}`, ...rest });
  };
  return { out, add };
}

/**
 * What does not depend on the function: the HTTP request, the CloudEvent headers and the Pub/Sub
 * envelope, broken every way. Data-level junk goes through `eventarc` like a real message.
 */
export function transportInputs(ctx: CorpusContext, topic: string, prefix: string): HostileInput[] {
  const { out, add } = collector(prefix);
  const valid = eventarc(ctx, topic, 'x', Buffer.from('{}'));
  const ce = valid.headers;
  const body = (v: unknown) => Buffer.from(JSON.stringify(v));
  const envelope = (message: unknown) =>
    body({ message, subscription: `projects/${ctx.project}/subscriptions/s` });

  // Data-level junk, base64-encoded as Pub/Sub does: always an acknowledgement.
  for (const { label, data } of junkData()) {
    add({
      label: `data: ${label}`,
      category: 'junk data',
      method: 'POST',
      path: '/',
      expect: 'ack',
      ...eventarc(ctx, topic, 'j', data),
    });
  }
  // The same as a raw Pub/Sub push body (no CloudEvent headers), which the framework also takes.
  for (const { label, data } of junkData())
    add({
      label: `push body: ${label}`,
      category: 'raw push',
      method: 'POST',
      path: `/projects/${ctx.project}/topics/${topic}`,
      headers: { 'content-type': 'application/json' },
      body: envelope({ data: data.toString('base64'), messageId: '1' }),
      expect: 'ack',
    });
  // The envelope itself: message.data of every wrong kind.
  const badData: [string, unknown][] = [
    ['missing', undefined],
    ['null', null],
    ['number', 42],
    ['object', { a: 1 }],
    ['array', ['e30=']],
    ['empty', ''],
    ['not base64 (!)', '!!!!'],
    ['not base64 (spaces)', 'e3 0='],
    ['not base64 (newline)', 'e30=\n'],
    ['padding only', '===='],
    ['too much padding', 'e30====='],
    ['one char', 'e'],
    ['unicode', 'ｅ３０＝'],
    ['url-safe alphabet', Buffer.from('{"a":"??>>"}').toString('base64url')],
    ['5 MB of base64', 'A'.repeat(5 * 1024 * 1024)],
    ['proto key', '__proto__'],
  ];
  for (const [label, data] of badData) {
    const message = data === undefined ? { messageId: '1' } : { data, messageId: '1' };
    add({
      label: `message.data ${label}`,
      category: 'envelope',
      method: 'POST',
      path: '/',
      headers: ce,
      body: envelope(message),
      expect: 'ack',
    });
  }
  const envelopes: [string, unknown][] = [
    ['message null', { message: null }],
    ['message string', { message: 'e30=' }],
    ['message array', { message: [{ data: 'e30=' }] }],
    ['no message', { subscription: 's' }],
    ['proto message', JSON.parse('{"__proto__":{"message":{"data":"e30="}}}')],
    ['constructor.prototype', { constructor: { prototype: { message: { data: 'e30=' } } } }],
    ['message.__proto__', JSON.parse('{"message":{"__proto__":{"data":"e30="}}}')],
    ['attributes wrong type', { message: { data: 'e30=', attributes: 'x' } }],
    ['attributes proto', JSON.parse('{"message":{"data":"e30=","attributes":{"__proto__":{"x":"y"}}}}')],
    ['messageId object', { message: { data: 'e30=', messageId: { toString: 'x' } } }],
    ['messageId 1 MB', { message: { data: 'e30=', messageId: 'm'.repeat(1 << 20) } }],
    ['publishTime garbage', { message: { data: 'e30=', publishTime: 'yesterday' } }],
    ['envelope array', [{ message: { data: 'e30=' } }]],
  ];
  for (const [label, value] of envelopes) {
    add({
      label: `envelope ${label}`,
      category: 'envelope',
      method: 'POST',
      path: '/',
      headers: ce,
      body: body(value),
      expect: 'ack',
    });
  }
  // Not JSON at all, or a content type Eventarc never sends.
  const bodies: [string, string, Buffer][] = [
    ['truncated JSON', 'application/json', valid.body.subarray(0, 20)],
    ['non-JSON', 'application/json', Buffer.from('hello')],
    ['empty JSON body', 'application/json', Buffer.alloc(0)],
    ['binary as JSON', 'application/json', garbage(3, 512)],
    ['deep JSON body', 'application/json', Buffer.from(deepArray(100_000))],
    ['8 MB JSON body', 'application/json', body({ message: { data: 'A'.repeat(8 * 1024 * 1024) } })],
    ['text/plain', 'text/plain', valid.body],
    ['form', 'application/x-www-form-urlencoded', Buffer.from('message[data]=e30%3D&__proto__[x]=1')],
    ['multipart', 'multipart/form-data; boundary=x', Buffer.from('--x\r\n\r\nhi\r\n--x--')],
    ['octet-stream', 'application/octet-stream', garbage(4, 256)],
    ['xml', 'application/xml', Buffer.from('<message/>')],
    ['charset latin1', 'application/json; charset=latin1', valid.body],
    ['unknown charset', 'application/json; charset=x-evil', valid.body],
    ['gzip claimed', 'application/json', valid.body],
  ];
  add({
    label: 'envelope deep',
    category: 'envelope',
    method: 'POST',
    path: '/',
    headers: ce,
    body: Buffer.from(deepText({ message: { data: 'e30=', extra: deepMark } }, 5_000)),
    expect: 'ack',
  });
  // A JSON scalar is no envelope, and body-parser refuses it before the function runs.
  for (const [label, value] of [
    ['null', null],
    ['number', 7],
    ['string', 'message'],
  ] as const)
    add({
      label: `envelope ${label}`,
      category: 'envelope',
      method: 'POST',
      path: '/',
      headers: ce,
      body: body(value),
      expect: 'refuse',
    });
  for (const [label, type, b] of bodies) {
    const headers = {
      ...ce,
      'content-type': type,
      ...(label === 'gzip claimed' ? { 'content-encoding': 'gzip' } : {}),
    };
    add({
      label: `body ${label}`,
      category: 'content type',
      method: 'POST',
      path: '/',
      headers,
      body: b,
      expect: type === 'text/plain' ? 'framework-defect' : 'refuse',
    });
  }
  add({
    label: 'no content-type',
    category: 'content type',
    method: 'POST',
    path: '/',
    headers: Object.fromEntries(Object.entries(ce).filter(([k]) => k !== 'content-type')),
    body: valid.body,
    expect: 'framework-defect',
  });
  // Structured mode with a broken event.
  const structured: [string, unknown][] = [
    [
      'structured, no type',
      { specversion: '1.0', id: 's', source: 'x', data: { message: { data: 'e30=' } } },
    ],
    ['structured, null', null],
    ['structured, array (batch)', [{ specversion: '1.0', id: 's', source: 'x', type: 'x' }]],
    [
      'structured, data string',
      { specversion: '1.0', id: 's', source: 'x', type: ce['ce-type'], data: 'e30=' },
    ],
  ];
  for (const [label, v] of structured) {
    add({
      label,
      category: 'structured mode',
      method: 'POST',
      path: '/',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: body(v),
      expect: 'refuse',
    });
  }
  // ce-* headers: missing, wrong, hostile.
  const drop = (name: string) => Object.fromEntries(Object.entries(ce).filter(([k]) => k !== name));
  for (const name of ['ce-type', 'ce-id', 'ce-source', 'ce-specversion']) {
    add({
      label: `without ${name}`,
      category: 'ce headers',
      method: 'POST',
      path: '/',
      headers: drop(name),
      body: valid.body,
      expect: 'refuse',
    });
  }
  const ceValues: [string, string][] = [
    ['ce-type', 'google.cloud.storage.object.v1.finalized'],
    ['ce-type', 'google.cloud.pubsub.topic.v1.messagePublished.evil'],
    ['ce-type', ''],
    ['ce-type', '__proto__'],
    ['ce-type', 'x'.repeat(8000)],
    ['ce-specversion', '0.3'],
    ['ce-specversion', '9.9'],
    ['ce-specversion', ''],
    ['ce-id', ''],
    ['ce-id', '../../x'],
    ['ce-id', '__proto__'],
    ['ce-id', 'x'.repeat(8000)],
    ['ce-source', 'javascript:alert(1)'],
    ['ce-source', '//pubsub.googleapis.com/projects/other/topics/x'],
    ['ce-time', 'not a time'],
    ['ce-subject', '{{ key "x" }}'],
    ['ce-dataschema', 'file:///etc/passwd'],
  ];
  for (const [name, value] of ceValues) {
    add({
      label: `${name}=${value.slice(0, 20)}`,
      category: 'ce headers',
      method: 'POST',
      path: '/',
      headers: { ...ce, [name]: value },
      body: valid.body,
      expect: 'refuse',
    });
  }
  // Other methods and paths.
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
    add({
      label: `method ${method}`,
      category: 'method',
      method,
      path: '/',
      headers: ce,
      body: ['GET', 'HEAD'].includes(method) ? undefined : valid.body,
      expect: ['GET', 'HEAD'].includes(method) ? 'framework-defect' : 'refuse',
    });
  }
  for (const p of [
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/',
    '/projects/x/topics/y/../../z',
    '/?__proto__[polluted]=1',
    '/favicon.ico',
    '//evil.example/',
  ]) {
    add({
      label: `path ${p}`,
      category: 'path',
      method: 'POST',
      path: p,
      headers: ce,
      body: valid.body,
      expect: 'refuse',
    });
  }
  return out;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
type Json = Record<string, unknown>;

/** Sets `value` at a dotted path of a copy (`undefined` deletes); `__proto__` keys are own keys. */
function setAt(base: Json, dotted: string, value: unknown): Json {
  const copy = clone(base);
  const keys = dotted.split('.');
  let node: Json = copy;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null)
      Object.defineProperty(node, k, { value: {}, enumerable: true, writable: true, configurable: true });
    node = node[k] as Json;
  }
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete node[last];
  else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** Audit-log entries, each wrong in one way, wrapped as Eventarc delivers them. */
export function instanceEventInputs(
  ctx: CorpusContext,
  opts: {
    /** A node that exists and must survive every hostile entry that names it. */
    kept: { name: string; id: string };
    /** A node that does not exist: hostile entries that are otherwise valid target it (no-op). */
    ghost: { name: string; id: string };
  },
): HostileInput[] {
  const topic = 'instance-events';
  const inputs = transportInputs(ctx, topic, 'ie');
  const { out, add } = collector('ie-entry');
  const timestamp = new Date(ctx.now).toISOString();
  const entry = (name: string, id: string, method = 'v1.compute.instances.delete'): Json => ({
    insertId: `hostile-${name}`,
    logName: `projects/${ctx.project}/logs/cloudaudit.googleapis.com%2Factivity`,
    operation: { id: `operation-${id}`, last: true, producer: 'compute.googleapis.com' },
    protoPayload: {
      '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
      methodName: method,
      resourceName: `projects/${ctx.project}/zones/${ctx.zone}/instances/${name}`,
    },
    resource: { type: 'gce_instance', labels: { instance_id: id, project_id: ctx.project, zone: ctx.zone } },
    timestamp,
  });
  const ghost = entry(opts.ghost.name, opts.ghost.id);
  const kept = entry(opts.kept.name, opts.kept.id);
  // Each entry its own insertId (unless the insertId is what it tests): two deliveries of one id in
  // flight at once are one event, and the second is rightly retried (EventInProgressError).
  const baseIds = new Set([kept.insertId, ghost.insertId]);
  const send = (label: string, category: string, value: unknown) => {
    const own =
      typeof value === 'object' &&
      value !== null &&
      !Buffer.isBuffer(value) &&
      baseIds.has((value as Json).insertId)
        ? { ...(value as Json), insertId: `${String((value as Json).insertId)}-${out.length}` }
        : value;
    add({
      label,
      category,
      method: 'POST',
      path: '/',
      expect: 'ack',
      ...eventarc(ctx, topic, 'e', Buffer.isBuffer(own) ? own : Buffer.from(JSON.stringify(own))),
    });
  };

  // Every field missing, then every field of the wrong type.
  const fields = [
    'insertId',
    'logName',
    'timestamp',
    'operation',
    'operation.id',
    'operation.last',
    'resource',
    'resource.type',
    'resource.labels',
    'resource.labels.instance_id',
    'resource.labels.project_id',
    'resource.labels.zone',
    'protoPayload',
    'protoPayload.methodName',
    'protoPayload.resourceName',
  ];
  // On the ghost: an entry still valid without a field (an optional label, say) acts on nothing.
  for (const f of fields) send(`missing ${f}`, 'missing field', setAt(ghost, f, undefined));
  for (const f of fields)
    wrongTypes.forEach((v, i) => send(`${f} wrong type #${i}`, 'wrong type', setAt(ghost, f, v)));
  // Names, ids, zones and projects carrying injections: the kept node's name is the stem, so a
  // parser that trims, decodes or lowercases its way to `kept` would remove a live node.
  for (const inj of injections) {
    send(
      `name ${inj.slice(0, 24)}`,
      'injection',
      setAt(
        kept,
        'protoPayload.resourceName',
        `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.kept.name}${inj}`,
      ),
    );
    send(`bare name ${inj.slice(0, 24)}`, 'injection', setAt(kept, 'protoPayload.resourceName', inj));
    send(
      `instance_id ${inj.slice(0, 24)}`,
      'injection',
      setAt(kept, 'resource.labels.instance_id', `${opts.kept.id}${inj}`),
    );
    send(`zone ${inj.slice(0, 24)}`, 'injection', setAt(kept, 'resource.labels.zone', `${ctx.zone}${inj}`));
    send(
      `project ${inj.slice(0, 24)}`,
      'injection',
      setAt(kept, 'resource.labels.project_id', `${ctx.project}${inj}`),
    );
    // Fields that only label the event: the entry stays valid and targets a node that does not exist.
    send(`insertId ${inj.slice(0, 24)}`, 'injection', setAt(ghost, 'insertId', `x${inj}`));
    send(`operation.id ${inj.slice(0, 24)}`, 'injection', setAt(ghost, 'operation.id', `x${inj}`));
  }
  // Paths that smuggle the kept node in another shape.
  const paths = [
    `projects/${ctx.project}/zones/${ctx.zone}/instances/../instances/${opts.kept.name}`,
    `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.kept.name}/`,
    `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.kept.name}%2F..`,
    `projects/other-project/zones/${ctx.zone}/instances/${opts.kept.name}`,
    `https://evil.example/compute/v1/projects/other-project/zones/${ctx.zone}/instances/${opts.kept.name}`,
    `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.kept.name}?fields=id`,
    `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.kept.name.toUpperCase()}`,
    `projects/${ctx.project}/zones/${ctx.zone}/instances/consul-server-1`,
    `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.kept.id}9`,
  ];
  for (const p of paths)
    send(`path ${p.slice(-40)}`, 'injection', setAt(kept, 'protoPayload.resourceName', p));
  // Methods and logs that are not ours, schema tricks.
  const methods = [
    'compute.instances.deleteX',
    'compute.instances.delete.extra',
    'v2.compute.instances.delete',
    'compute.instances.',
    'COMPUTE.INSTANCES.DELETE',
    'compute.instances.setMetadata',
    'compute.instanceGroupManagers.resize',
    'compute.instanceGroupManagers.__proto__',
    'compute.instanceGroupManagers.constructor',
    '__proto__',
    'constructor',
    'toString',
    'compute.instances.delete\n',
    'storage.objects.delete',
  ];
  for (const m of methods) send(`method ${m}`, 'unknown method', setAt(kept, 'protoPayload.methodName', m));
  for (const log of [
    `projects/${ctx.project}/logs/cloudaudit.googleapis.com%2Fdata_access`,
    `projects/${ctx.project}/logs/cloudaudit.googleapis.com/activity`,
    `projects/${ctx.project}/logs/evil%2Fcloudaudit.googleapis.com%2Factivity%0A`,
    'cloudaudit.googleapis.com%2Factivity',
  ])
    send(`log ${log.slice(-30)}`, 'unknown log', setAt(kept, 'logName', log));
  for (const t of [
    '1970-01-01T00:00:00Z',
    '2999-01-01T00:00:00Z',
    new Date(ctx.now + 3600_000).toISOString(),
    '2026-13-45T99:99:99Z',
    'now',
    '0',
  ])
    send(`timestamp ${t}`, 'time', setAt(kept, 'timestamp', t));
  send('status failed, not a number', 'wrong type', setAt(ghost, 'protoPayload.status', { code: 'x' }));
  send('resource type gce_disk', 'wrong type', setAt(kept, 'resource.type', 'gce_disk'));
  send(
    'instance_id other than the path id',
    'injection',
    setAt(
      setAt(
        kept,
        'protoPayload.resourceName',
        `projects/${ctx.project}/zones/${ctx.zone}/instances/${opts.ghost.id}`,
      ),
      'resource.labels.instance_id',
      opts.kept.id,
    ),
  );
  // Prototype pollution.
  send(
    'labels __proto__',
    'prototype pollution',
    // The instance id only under `__proto__`: read through the prototype, it would remove `kept`.
    JSON.parse(
      JSON.stringify(setAt(kept, 'resource.labels.instance_id', undefined)).replace(
        '"labels":{',
        `"labels":{"__proto__":{"instance_id":"${opts.kept.id}"},`,
      ),
    ),
  );
  send('labels constructor', 'prototype pollution', setAt(ghost, 'resource.labels.constructor', 'x'));
  send('entry __proto__', 'prototype pollution', JSON.parse(`{"__proto__":${JSON.stringify(kept)}}`));
  send(
    'protoPayload __proto__',
    'prototype pollution',
    // The only methodName is under `__proto__`: read through the prototype, it would remove `kept`.
    JSON.parse(
      JSON.stringify(setAt(kept, 'protoPayload.methodName', undefined)).replace(
        '"protoPayload":{',
        '"protoPayload":{"__proto__":{"methodName":"compute.instances.delete"},',
      ),
    ),
  );
  send(
    'request.__proto__',
    'prototype pollution',
    setAt(ghost, 'protoPayload.request', JSON.parse('{"__proto__":{"instances":["x"]}}')),
  );
  // Group calls: lists of every bad shape.
  const group = (instances: unknown, extra: (e: Json) => Json = (e) => e) =>
    extra({
      ...entry(`ilb-backend-mig`, '1', 'v1.compute.instanceGroupManagers.deleteInstances'),
      operation: { id: 'operation-g', first: true },
      protoPayload: {
        methodName: 'v1.compute.instanceGroupManagers.deleteInstances',
        resourceName: `projects/${ctx.project}/zones/${ctx.zone}/instanceGroupManagers/ilb-backend-mig`,
        request: { instances },
      },
      resource: {
        type: 'gce_instance_group_manager',
        labels: { project_id: ctx.project, zone: ctx.zone, instance_group_manager_name: 'ilb-backend-mig' },
      },
    });
  const kp = (suffix: string) => `zones/${ctx.zone}/instances/${opts.kept.name}${suffix}`;
  const lists: [string, unknown][] = [
    ['none', undefined],
    ['empty', []],
    ['string', kp('')],
    ['numbers', [1, 2]],
    ['objects', [{ instance: kp('') }]],
    ['nulls', [null]],
    ['1001 instances', Array.from({ length: 1001 }, (_, i) => `zones/${ctx.zone}/instances/ghost-${i}`)],
    ['50k duplicates', Array.from({ length: 50_000 }, () => `zones/${ctx.zone}/instances/ghost-1`)],
    ...injections.slice(0, 30).map((inj): [string, unknown] => [`kept${inj.slice(0, 16)}`, [kp(inj)]]),
    ['traversal', [`zones/${ctx.zone}/instances/x/../../${opts.kept.name}`]],
    ['other zone path', [`zones/${ctx.zone}/../us-east1-b/instances/${opts.kept.name}`]],
  ];
  for (const [label, list] of lists) send(`group list ${label}`, 'group', group(list));
  send(
    'group name injection',
    'group',
    group([kp('')], (e) => setAt(e, 'resource.labels.instance_group_manager_name', '../consul')),
  );
  send(
    'group __proto__',
    'group',
    group([kp('')], (e) => setAt(e, 'resource.labels.instance_group_manager_name', '__proto__')),
  );
  // Deep and large.
  send(
    'deep request',
    'size',
    Buffer.from(deepText(setAt(ghost, 'protoPayload.request', { nest: deepMark }), 3_000)),
  );
  send('260 KiB entry', 'size', setAt(ghost, 'protoPayload.padding', 'x'.repeat(260 * 1024)));
  send('190 KiB insertId', 'size', setAt(ghost, 'insertId', 'i'.repeat(190 * 1024)));
  send(
    '20k labels',
    'size',
    setAt(
      ghost,
      'resource.labels',
      Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'v'])),
    ),
  );
  return [...inputs, ...out];
}

/** Monitoring notifications, each wrong in one way, wrapped as Eventarc delivers them. */
export function notificationInputs(ctx: CorpusContext, opts: { open: Json; closed: Json }): HostileInput[] {
  const topic = 'scaling-alerts';
  const inputs = transportInputs(ctx, topic, 'sa');
  const { out, add } = collector('sa-note');
  const send = (label: string, category: string, value: unknown) =>
    add({
      label,
      category,
      method: 'POST',
      path: '/',
      expect: 'ack',
      ...eventarc(ctx, topic, 'n', Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value))),
    });
  const { open, closed } = opts;

  for (const v of [
    '1.1',
    '1.3',
    '2',
    '',
    ' 1.2',
    '1.2 ',
    'test',
    '__proto__',
    'constructor',
    'x'.repeat(100),
  ])
    send(`version ${v}`, 'unknown version', setAt(open, 'version', v));
  for (const v of [1.2, null, true, ['1.2'], { '1.2': true }])
    send(`version ${JSON.stringify(v)}`, 'unknown version', setAt(open, 'version', v));
  send('no version', 'missing field', setAt(open, 'version', undefined));
  // Every field of a closed incident (a closure of nothing: no change) missing or of a wrong type.
  const fields = [
    'incident',
    'incident.incident_id',
    'incident.state',
    'incident.started_at',
    'incident.ended_at',
    'incident.policy_name',
    'incident.policy_user_labels',
    'incident.condition',
    'incident.condition.name',
    'incident.metric',
    'incident.resource',
    'incident.resource.labels',
    'incident.resource.labels.zone',
    'incident.scoping_project_id',
    'incident.observed_value',
    'incident.threshold_value',
    'incident.summary',
  ];
  for (const f of fields) send(`missing ${f}`, 'missing field', setAt(closed, f, undefined));
  for (const f of fields)
    wrongTypes.forEach((v, i) => send(`${f} wrong type #${i}`, 'wrong type', setAt(closed, f, v)));
  // Injections into what chooses the change (an open incident: any of these applied would change
  // the autoscaler) and into what only describes it (a closed one; incident ids too, since many
  // injections, `constructor` or `1e5`, are valid ids).
  for (const inj of injections) {
    send(`incident_id ${inj.slice(0, 24)}`, 'injection', setAt(closed, 'incident.incident_id', inj));
    send(`tier ${inj.slice(0, 24)}`, 'injection', setAt(open, 'incident.policy_user_labels.tier', inj));
    send(`action ${inj.slice(0, 24)}`, 'injection', setAt(open, 'incident.policy_user_labels.action', inj));
    send(`zone ${inj.slice(0, 24)}`, 'injection', setAt(open, 'incident.resource.labels.zone', inj));
    send(`policy_name ${inj.slice(0, 24)}`, 'injection', setAt(closed, 'incident.policy_name', inj));
    send(
      `scoping project ${inj.slice(0, 24)}`,
      'injection',
      setAt(closed, 'incident.scoping_project_id', inj),
    );
  }
  for (const s of ['OPEN', 'Open', 'opened', 'closed\n', 'CLOSED', '', '__proto__', 'constructor'])
    send(`state ${s}`, 'wrong value', setAt(open, 'incident.state', s));
  for (const t of [-1, 1e20, 1.5, '1e3', '-5', '0x10', '99999999999999999999', 'NaN'])
    send(`started_at ${t}`, 'wrong value', setAt(open, 'incident.started_at', t));
  send('ended before it started', 'wrong value', setAt(closed, 'incident.ended_at', 1));
  send('closed without ended_at', 'wrong value', setAt(closed, 'incident.ended_at', null));
  // Prototype pollution in the label maps and the incident.
  const labelsJson = (raw: string) => {
    const text = JSON.stringify(open).replace(
      /"policy_user_labels":\{[^}]*\}/,
      `"policy_user_labels":${raw}`,
    );
    return JSON.parse(text) as unknown;
  };
  send(
    'labels __proto__ object',
    'prototype pollution',
    labelsJson('{"__proto__":{"tier":"haproxy","action":"raise-min"}}'),
  );
  send(
    'labels __proto__ tier',
    'prototype pollution',
    labelsJson('{"__proto__":"haproxy","action":"raise-min"}'),
  );
  send(
    'labels tier constructor',
    'prototype pollution',
    labelsJson('{"tier":"constructor","action":"raise-min"}'),
  );
  send(
    'labels action __proto__',
    'prototype pollution',
    labelsJson('{"tier":"haproxy","action":"__proto__"}'),
  );
  send(
    'labels action hasOwnProperty',
    'prototype pollution',
    labelsJson('{"tier":"haproxy","action":"hasOwnProperty"}'),
  );
  send('labels action toString', 'prototype pollution', labelsJson('{"tier":"haproxy","action":"toString"}'));
  send(
    'incident __proto__',
    'prototype pollution',
    JSON.parse(`{"version":"1.2","incident":{"__proto__":${JSON.stringify(open.incident)}}}`),
  );
  send(
    '65 labels',
    'size',
    setAt(
      open,
      'incident.policy_user_labels',
      Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
    ),
  );
  send('long label value', 'size', setAt(open, 'incident.policy_user_labels.action', 'raise-min'.repeat(40)));
  send('long summary', 'size', setAt(closed, 'incident.summary', 's'.repeat(9000)));
  send(
    'deep documentation',
    'size',
    Buffer.from(deepText(setAt(closed, 'incident.documentation', deepMark), 3_000)),
  );
  return [...inputs, ...out];
}

/** Cloud Scheduler ticks: the data is never read, the transport still gets everything. */
export function schedulerInputs(ctx: CorpusContext): HostileInput[] {
  const topic = 'health-sweep';
  const { out, add } = collector('hs-tick');
  for (const inj of injections) {
    add({
      label: `data ${inj.slice(0, 24)}`,
      category: 'injection',
      method: 'POST',
      path: '/',
      expect: 'ack',
      ...eventarc(ctx, topic, 't', Buffer.from(inj)),
    });
    // Attribute values are strings; a header-safe injection also goes into the CloudEvent's id.
    add({
      label: `attribute ${inj.slice(0, 24)}`,
      category: 'injection',
      method: 'POST',
      path: '/',
      expect: 'ack',
      ...eventarc(ctx, topic, 't', Buffer.from('tick'), { [inj.slice(0, 256) || 'k']: inj }),
    });
  }
  return [...transportInputs(ctx, topic, 'hs'), ...out];
}

/** The operators' HTTP endpoint: auth missing or malformed, methods, bodies, dryRun tricks. */
export function sweepHttpInputs(): HostileInput[] {
  const { out, add } = collector('http');
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const auths: (string | undefined)[] = [
    undefined,
    '',
    'Bearer',
    'Bearer ',
    'Bearer  t',
    'bearer t',
    'BEARER t',
    'Basic eDp5',
    'Digest username="x"',
    'Bearer t t',
    'Bearer\tt',
    'Token t',
    't',
    `Bearer ${'t'.repeat(16_000)}`.slice(0, 16_000),
    'Bearer,Bearer t',
  ];
  for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
    for (const auth of auths) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (auth !== undefined) headers.authorization = auth;
      const hasBody = method !== 'GET' && method !== 'HEAD';
      add({
        label: `${method} auth ${JSON.stringify(auth ?? null).slice(0, 20)}`,
        category: 'auth',
        method,
        path: '/?dryRun=true',
        headers,
        body: hasBody ? json({ dryRun: true }) : undefined,
        expect: 'refuse',
      });
    }
  }
  // Without auth, every body and path is refused before it is read.
  const bodies: [string, string, Buffer][] = [
    ['non-JSON', 'application/json', Buffer.from('{')],
    ['proto', 'application/json', Buffer.from('{"__proto__":{"dryRun":false}}')],
    ['8 MB', 'application/json', json({ dryRun: 'x'.repeat(8 * 1024 * 1024) })],
    ['deep', 'application/json', Buffer.from(deepArray(100_000))],
    [
      'form proto',
      'application/x-www-form-urlencoded',
      Buffer.from('__proto__[dryRun]=1&constructor[prototype][x]=1'),
    ],
    ['binary', 'application/octet-stream', garbage(5, 1024)],
  ];
  for (const [label, type, body] of bodies)
    add({
      label: `unauthenticated ${label}`,
      category: 'auth',
      method: 'POST',
      path: '/',
      headers: { 'content-type': type },
      body,
      expect: 'refuse',
    });
  for (const p of ['/../../etc/passwd', '/?__proto__[dryRun]=false', '/%2e%2e', '/favicon.ico'])
    add({
      label: `unauthenticated path ${p}`,
      category: 'auth',
      method: 'GET',
      path: p,
      headers: {},
      expect: 'refuse',
    });
  // Injections in the query and in the token; a token is never logged nor used to pick anything.
  // Byte-wise: encodeURIComponent refuses a lone surrogate.
  const percent = (v: string) =>
    [...Buffer.from(v, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  const headerSafe = (v: string) => /^[\x20-\x7e]*$/.test(v);
  for (const inj of injections) {
    add({
      label: `query ${inj.slice(0, 24)}`,
      category: 'injection',
      method: 'GET',
      path: `/?dryRun=${percent(inj)}`,
      headers: {},
      expect: 'refuse',
    });
    if (headerSafe(inj) && !/\s/.test(inj) && inj.length < 8000)
      add({
        label: `token ${inj.slice(0, 24)}`,
        category: 'injection',
        // Past the token check, a PUT is refused (405) without a sweep: fast, and still through the check.
        method: 'PUT',
        path: '/?dryRun=true',
        headers: { authorization: `Bearer ${inj}` },
        expect: 'refuse',
      });
    else
      add({
        label: `scheme ${inj.slice(0, 24)}`,
        category: 'injection',
        method: 'GET',
        path: '/?dryRun=true',
        headers: { authorization: `${percent(inj).slice(0, 4000)} t` },
        expect: 'refuse',
      });
  }
  // Authenticated, every dryRun a dry run: what the body or the query says cannot turn it into a real one.
  const dry: [string, string, string | undefined, Buffer | undefined][] = [
    ['query array', '/?dryRun=true&dryRun=false', undefined, undefined],
    ['query array 2', '/?dryRun[]=true&dryRun', undefined, undefined],
    ['query object', '/?dryRun[a]=true&dryRun=true', undefined, undefined],
    ['query proto', '/?dryRun=true&__proto__[dryRun]=false', undefined, undefined],
    ['query constructor', '/?dryRun=true&constructor[prototype][dryRun]=false', undefined, undefined],
    [
      'body proto',
      '/?dryRun=true',
      'application/json',
      Buffer.from('{"__proto__":{"dryRun":false},"dryRun":true}'),
    ],
    ['body non-JSON', '/?dryRun=true', 'application/json', Buffer.from('{"dryRun":')],
    ['body text', '/?dryRun=true', 'text/plain', Buffer.from('dryRun=false')],
    ['body array', '/?dryRun=true', 'application/json', json([{ dryRun: false }])],
    ['body deep', '/?dryRun=true', 'application/json', Buffer.from(deepArray(50_000))],
    ['body 4 MB', '/?dryRun=true', 'application/json', json({ dryRun: true, pad: 'x'.repeat(4 << 20) })],
    [
      'body form',
      '/?dryRun=true',
      'application/x-www-form-urlencoded',
      Buffer.from('dryRun=true&__proto__[x]=1'),
    ],
    ['body binary', '/?dryRun=true', 'application/octet-stream', garbage(6, 512)],
  ];
  for (const [label, p, type, body] of dry)
    add({
      label: `dry run ${label}`,
      category: 'dryRun',
      method: 'POST',
      path: p,
      headers: { authorization: 'Bearer t', ...(type ? { 'content-type': type } : {}) },
      body,
      expect: 'refuse',
    });
  return out;
}
