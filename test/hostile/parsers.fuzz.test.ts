/**
 * fast-check over every parser that reads attacker-controlled input: whatever arrives, it never
 * throws (it answers with a typed error), never accepts a value its schema forbids, and where a
 * value can be written back, what it wrote parses to the same value.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { ConfigError } from '../../shared/config';
import { parseLogEntry, parsePubsubMessage, type ParseResult } from '../../shared/instance-events/parse';
import { entryIdSchema } from '../../shared/instance-events/schema';
import { parseHealthSweepConfig, type HealthSweepConfig } from '../../shared/health-sweep/config';
import {
  incidentIdSchema,
  labelBounds,
  parseNotification,
  parseNotificationText,
  type NotificationResult,
} from '../../shared/scaling-alerts/notification';
import { parseRuleFile, ruleFileSchema } from '../../shared/scaling-alerts/rules';
import { createLogger } from '../../shared/logging';
import { createBackendHandler } from '../../services/backend/app';
import { createFrontendHandler } from '../../services/frontend/app';
import {
  backendName,
  computeNamePattern,
  parseRenderedConfig,
  parseServerLine,
  type ConfigSlot,
} from '../../services/haproxy-sync/config';
import { isSafeCommand, planSync } from '../../services/haproxy-sync/plan';
import type { RuntimeSlot } from '../../services/haproxy-sync/runtime';
import { eventFixture } from '../fixtures/events';
import { injections } from './corpus';

type Json = Record<string, unknown>;
const runs = { numRuns: 300 };

/** A hostile value: anything, a hostile string, or a prototype-pollution object. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ withObjectString: true, withNullPrototype: true }),
  fc.constantFrom(...injections),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom(
    JSON.parse('{"__proto__":{"polluted":true}}') as unknown,
    JSON.parse('{"constructor":{"prototype":{"polluted":true}}}') as unknown,
  ),
);

/** A copy of `base` with the value at one of `paths` replaced (`undefined`: removed). */
function mutated(base: Json, paths: string[][]): fc.Arbitrary<Json> {
  return fc.tuple(fc.constantFrom(...paths), fc.option(hostile, { nil: undefined })).map(([keys, value]) => {
    const copy = JSON.parse(JSON.stringify(base)) as Json;
    let node = copy;
    for (const k of keys.slice(0, -1)) {
      if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
      node = node[k] as Json;
    }
    const last = keys[keys.length - 1]!;
    if (value === undefined) delete node[last];
    else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
    return copy;
  });
}

const pathsOf = (value: unknown, prefix: string[] = []): string[][] =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])])
    : [];

afterEach(() => {
  // No parser may have polluted a prototype.
  expect(({} as Json).polluted).toBeUndefined();
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
});

describe('instanceEvents: parseLogEntry / parsePubsubMessage', () => {
  const fixtures = [
    'audit-instance-delete-first.json',
    'audit-instance-delete-last.json',
    'audit-instance-delete-by-user-last.json',
    'audit-instance-preempted.json',
  ].map((name) => eventFixture<Json>(name));

  /** What an accepted entry must satisfy, whatever it was made from. */
  const valid = (result: ParseResult) => {
    if (!result.ok) {
      expect(['malformed', 'irrelevant']).toContain(result.outcome);
      expect(typeof result.reason).toBe('string');
      return;
    }
    const e = result.event;
    expect(['drain', 'remove', 'restore']).toContain(e.action);
    expect(entryIdSchema.safeParse(e.insertId).success).toBe(true);
    if (e.operationId !== undefined) expect(entryIdSchema.safeParse(e.operationId).success).toBe(true);
    expect(Number.isFinite(e.time)).toBe(true);
    expect(e.targets.length).toBeGreaterThan(0);
    expect(e.targets.length).toBeLessThanOrEqual(1000);
    for (const t of e.targets) {
      expect(t.zone).toMatch(/^[a-z]+-[a-z]+[0-9]+-[a-z]$/);
      expect(t.project).toMatch(/^[a-z][-a-z0-9.:]{4,61}[a-z0-9]$/);
      expect(t.name).toMatch(t.byId ? /^[0-9]{1,20}$/ : computeNamePattern);
      if (t.instanceId !== undefined) expect(t.instanceId).toMatch(/^[0-9]{1,20}$/);
    }
  };

  it('never throws on anything, and accepts only entries that hold the contract', () => {
    fc.assert(
      fc.property(hostile, (input) => {
        valid(parseLogEntry(input));
        valid(parsePubsubMessage(input));
      }),
      runs,
    );
  });

  it('a fixture with any one field replaced or removed: a typed answer, never a bad target', () => {
    for (const fixture of fixtures) {
      fc.assert(
        fc.property(mutated(fixture, pathsOf(fixture)), (entry) => {
          const result = parseLogEntry(entry);
          valid(result);
          // As JSON through a Pub/Sub envelope, the same answer as the JSON value parsed directly.
          const text = JSON.stringify(entry);
          const data = Buffer.from(text).toString('base64');
          expect(parsePubsubMessage({ message: { data } })).toEqual(parseLogEntry(JSON.parse(text)));
        }),
        { numRuns: 200 },
      );
    }
  });

  it('any base64 text or bytes as message data: a typed answer', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('base64')),
          fc.json().map((j) => Buffer.from(j).toString('base64')),
        ),
        (data) => valid(parsePubsubMessage({ message: { data } })),
      ),
      runs,
    );
  });

  it('ids of the entry: only printable ASCII up to 256 characters reach the ledger', () => {
    const base = fixtures[1]!;
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }), (id) => {
        const result = parseLogEntry({ ...base, insertId: id });
        expect(result.ok).toBe(/^[\x21-\x7e]{1,256}$/.test(id));
      }),
      runs,
    );
    // A lone surrogate cannot be encoded into a KV key: refused, not retried for ever.
    expect(parseLogEntry({ ...base, insertId: 'a\ud800' })).toMatchObject({
      ok: false,
      outcome: 'malformed',
    });
  });
});

describe('scalingAlerts: parseNotification / parseNotificationText', () => {
  const open = eventFixture<Json>('monitoring-incident-open.json');
  const closed = eventFixture<Json>('monitoring-incident-closed.json');

  const valid = (result: NotificationResult) => {
    if (!result.ok) {
      expect(['ignored', 'malformed']).toContain(result.outcome);
      if (result.incidentId !== undefined)
        expect(incidentIdSchema.safeParse(result.incidentId).success).toBe(true);
      return;
    }
    const i = result.incident;
    expect(incidentIdSchema.safeParse(i.id).success).toBe(true);
    expect(['open', 'closed']).toContain(i.state);
    expect(Number.isSafeInteger(i.startedAt)).toBe(true);
    if (i.state === 'closed') expect(i.endedAt).toBeGreaterThanOrEqual(i.startedAt);
    expect(i.time).toBe(i.endedAt ?? i.startedAt);
    for (const labels of [i.userLabels, i.metricLabels, i.resourceLabels]) {
      expect(Object.keys(labels).length).toBeLessThanOrEqual(labelBounds.count);
      for (const [k, v] of Object.entries(labels)) {
        expect(k.length).toBeLessThanOrEqual(labelBounds.key);
        expect(typeof v).toBe('string');
        expect(v.length).toBeLessThanOrEqual(labelBounds.value);
      }
      expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    }
    for (const n of [i.observedValue, i.thresholdValue])
      if (n !== undefined) expect(Number.isFinite(n)).toBe(true);
  };

  it('never throws on anything or on any text', () => {
    fc.assert(
      fc.property(hostile, fc.string({ unit: 'binary' }), (input, text) => {
        valid(parseNotification(input));
        valid(parseNotificationText(text));
        valid(parseNotificationText(JSON.stringify(input) ?? ''));
      }),
      runs,
    );
  });

  it('label maps around the bounds: accepted exactly when every key, value and count is within them', () => {
    // Small sizes and sizes at the bounds ±2: one label of that key and value length among n.
    const size = (bound: number) => fc.oneof(fc.nat(8), fc.integer({ min: bound - 2, max: bound + 2 }));
    const labels = fc
      .tuple(
        size(labelBounds.count),
        size(labelBounds.key),
        size(labelBounds.value),
        fc.string({ maxLength: 6 }),
      )
      .map(([n, k, v, text]): Record<string, string> => {
        const map = Object.fromEntries(Array.from({ length: n - 1 }, (_, i) => [`l${i}`, text]));
        return n > 0 ? { ...map, ['k'.repeat(k)]: `${text}${'v'.repeat(v)}`.slice(0, v) } : map;
      });
    const where = fc.constantFrom('policy_user_labels', 'metric', 'resource');
    fc.assert(
      fc.property(labels, where, (map, field) => {
        const n = JSON.parse(JSON.stringify(open)) as { incident: Json };
        n.incident[field] = field === 'policy_user_labels' ? map : { type: 'x', labels: map };
        const result = parseNotification(n);
        valid(result);
        const within =
          Object.keys(map).length <= labelBounds.count &&
          Object.entries(map).every(([k, v]) => k.length <= labelBounds.key && v.length <= labelBounds.value);
        expect(result.ok).toBe(within);
      }),
      { numRuns: 200 },
    );
  });

  it('a fixture with any one field replaced or removed: a typed answer within the schema', () => {
    for (const fixture of [open, closed]) {
      fc.assert(
        fc.property(mutated(fixture, pathsOf(fixture)), (n) => {
          const result = parseNotification(n);
          valid(result);
          const text = JSON.stringify(n);
          expect(parseNotificationText(text)).toEqual(parseNotification(JSON.parse(text)));
        }),
        { numRuns: 200 },
      );
    }
  });
});

describe('healthSweep: parseHealthSweepConfig', () => {
  const name = fc.stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/);
  const projectId = fc.stringMatching(/^[a-z][-a-z0-9]{4,10}[a-z0-9]$/);
  const zoneName = fc.constantFrom('us-central1-a', 'us-central1-b', 'europe-west1-c');
  const budget = fc.oneof(
    fc.integer({ min: 0, max: 10_000 }),
    fc.integer({ min: 0, max: 100 }).map((p) => `${p}%`),
  );
  const group = fc.record(
    {
      project: projectId,
      name,
      role: fc.constantFrom('backend', 'haproxy', 'frontend'),
      maxRecreations: budget,
      healthyMinimum: budget,
      where: fc.oneof(
        zoneName.map((zone) => ({ zone })),
        fc.constantFrom('us-central1', 'europe-west1').map((region) => ({ region })),
      ),
    },
    { requiredKeys: ['project', 'name', 'role', 'where'] },
  );
  const document = fc.record({
    groups: fc
      .array(group, { minLength: 1, maxLength: 4 })
      .map((gs) => gs.map(({ where, ...g }) => ({ ...g, ...where }))),
    thresholds: fc.record(
      {
        absentSweeps: fc.integer({ min: 1, max: 100 }),
        brokenGraceSeconds: fc.integer({ min: 0, max: 86_400 }),
        bootGraceSeconds: fc.integer({ min: 0, max: 86_400 }),
        zoneDeadThreshold: fc.double({ min: 0.01, max: 1, noNaN: true }),
      },
      { requiredKeys: [] },
    ),
    repairOrphans: fc.boolean(),
  });

  /** The document a parsed configuration came from, written back. */
  const written = (c: HealthSweepConfig) => ({
    groups: c.groups.map((g) => ({
      project: g.project,
      name: g.name,
      role: g.role,
      ...(g.scope.kind === 'zone' ? { zone: g.scope.zone } : { region: g.scope.region }),
      maxRecreations:
        g.maxRecreations.kind === 'count' ? g.maxRecreations.count : `${g.maxRecreations.percent}%`,
      healthyMinimum:
        g.healthyMinimum.kind === 'count' ? g.healthyMinimum.count : `${g.healthyMinimum.percent}%`,
    })),
    thresholds: {
      absentSweeps: c.thresholds.absentSweeps,
      brokenGraceSeconds: c.thresholds.brokenGraceMs / 1000,
      bootGraceSeconds: c.thresholds.bootGraceMs / 1000,
      tokenBucket: c.thresholds.tokenBucket,
      zoneDeadThreshold: c.thresholds.zoneDeadThreshold,
    },
    repairOrphans: c.repairOrphans,
  });

  const parse = (input: unknown): HealthSweepConfig | ConfigError => {
    try {
      return parseHealthSweepConfig(input);
    } catch (err) {
      // The one way it may fail: a ConfigError that names the problem.
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
  };

  it('valid documents round-trip: written back, they parse to the same configuration', () => {
    fc.assert(
      fc.property(document, (doc) => {
        const first = parse(doc);
        if (first instanceof ConfigError) {
          // Only two groups that could share a node may refuse a document built from valid fields.
          expect(first.message).toMatch(/overlap|listed twice/);
          return;
        }
        expect(parse(JSON.parse(JSON.stringify(written(first))))).toEqual(first);
        for (const g of first.groups)
          expect(g.key).toMatch(
            /^projects\/[a-z][-a-z0-9]+\/(zones|regions)\/[-a-z0-9]+\/instanceGroupManagers\/[-a-z0-9]+$/,
          );
      }),
      runs,
    );
  });

  it('anything else, or a valid document with one field broken: a ConfigError, never another throw', () => {
    const example = JSON.parse(
      readFileSync(path.join(__dirname, '../../infra-scripts/config/health-sweep.example.json'), 'utf8'),
    ) as Json;
    fc.assert(
      fc.property(fc.oneof(hostile, mutated(example, pathsOf(example))), (input) => {
        const result = parse(input);
        if (result instanceof ConfigError) return;
        for (const g of result.groups) {
          expect(g.name).toMatch(computeNamePattern);
          expect(g.project).toMatch(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/);
        }
      }),
      runs,
    );
  });
});

describe('scalingAlerts: parseRuleFile', () => {
  const example = JSON.parse(
    readFileSync(path.join(__dirname, '../../infra-scripts/config/scaling-rules.example.json'), 'utf8'),
  ) as Json;

  it('the example and every mutation of it: never throws; what it accepts satisfies the schema and round-trips', () => {
    expect(parseRuleFile(example).ok).toBe(true);
    fc.assert(
      fc.property(fc.oneof(hostile, mutated(example, pathsOf(example))), (input) => {
        const result = parseRuleFile(input);
        if (!result.ok) {
          expect(result.reason).toMatch(/^invalid rule file: /);
          return;
        }
        expect(ruleFileSchema.safeParse(result.rules).success).toBe(true);
        const again = parseRuleFile(JSON.parse(JSON.stringify(result.rules)));
        expect(again).toEqual(result);
        // A tier named `__proto__` or `constructor` is refused by the name pattern.
        for (const tier of Object.keys(result.rules.tiers)) expect(tier).toMatch(/^[a-z][-a-z0-9]{0,62}$/);
      }),
      runs,
    );
  });
});

describe('haproxy-sync: rendered configuration → slots → runtime commands', () => {
  const ipv4 = fc.ipV4();
  const fragment = fc.oneof(
    fc.constantFrom(...injections),
    ipv4,
    fc.constantFrom(
      'server',
      'z1',
      'b2',
      'backup',
      'disabled',
      '#',
      'node=',
      'id=',
      'drain-id=',
      ':',
      ' ',
      '\t',
    ),
    fc.stringMatching(/^[a-z][-a-z0-9]{0,8}$/),
    fc.nat({ max: 99_999 }).map(String),
  );
  const serverish = fc.array(fragment, { maxLength: 12 }).map((parts) => `    server ${parts.join(' ')}`);
  const rendered = fc
    .array(fc.oneof(serverish, fc.string({ unit: 'binary', maxLength: 60 })), { maxLength: 20 })
    .map((lines) => ['global', '  daemon', `backend ${backendName}`, ...lines, 'frontend fe'].join('\n'));
  const slotName = fc.tuple(fc.constantFrom('z', 'b'), fc.integer({ min: 1, max: 9999 }));
  const running: fc.Arbitrary<RuntimeSlot[]> = fc.array(
    fc
      .record({
        name: slotName.map(([p, n]) => `${p}${n}`),
        addr: ipv4,
        port: fc.integer({ min: 1, max: 65535 }),
        maint: fc.boolean(),
        drain: fc.boolean(),
        sessions: fc.nat({ max: 3 }),
      })
      .map((s) => ({ ...s, pool: s.name[0] as 'z' | 'b' })),
    { maxLength: 12 },
  );

  const checkSlot = (s: ConfigSlot) => {
    expect(s.name).toMatch(/^[zb]\d{1,4}$/);
    expect(isIPv4(s.addr)).toBe(true);
    expect(s.port).toBeGreaterThanOrEqual(1);
    expect(s.port).toBeLessThanOrEqual(65535);
    if (s.node !== undefined) expect(s.node).toMatch(computeNamePattern);
  };

  it('any text parses without throwing; every slot is valid and every command it leads to is safe', () => {
    fc.assert(
      fc.property(rendered, running, fc.boolean(), (text, slots, structureChanged) => {
        const config = parseRenderedConfig(text);
        config.slots.forEach(checkSlot);
        const plan = planSync(backendName, config.slots, slots, structureChanged);
        if (plan.kind === 'runtime') for (const c of plan.commands) expect(isSafeCommand(c)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a slot written as a server line parses back to itself', () => {
    const slot = fc.record({
      name: slotName,
      addr: ipv4,
      port: fc.integer({ min: 1, max: 65535 }),
      enabled: fc.boolean(),
      node: fc.stringMatching(/^[a-z]([-a-z0-9]{0,20}[a-z0-9])?$/),
      id: fc.stringMatching(/^\d{1,20}$/),
      drainId: fc.option(fc.stringMatching(/^\d{1,20}$/), { nil: undefined }),
    });
    fc.assert(
      fc.property(slot, (s) => {
        const [pool, n] = s.name;
        const line = `    server ${pool}${n} ${s.addr}:${s.port}${pool === 'b' ? ' backup' : ''}${s.enabled ? '' : ' disabled'} # node=${s.node} id=${s.id}${s.drainId !== undefined ? ` drain-id=${s.drainId}` : ''}`;
        expect(parseServerLine(line)).toEqual({
          name: `${pool}${n}`,
          pool,
          addr: s.addr,
          port: s.port,
          enabled: s.enabled,
          node: s.node,
          drain: s.enabled && s.drainId === s.id,
        });
      }),
      runs,
    );
  });
});

describe('services: request targets', () => {
  const logger = createLogger({ name: 'fuzz', level: 'silent' });
  /** A response that records what the handler answered. */
  const response = () => {
    const r = { status: 0, body: '' };
    const res = {
      headersSent: false,
      writeHead(status: number) {
        r.status = status;
        return res;
      },
      setHeader() {
        return res;
      },
      end(text?: string) {
        r.body = text ?? '';
        return res;
      },
    };
    return { r, res: res as unknown as ServerResponse };
  };
  const target = fc.oneof(
    fc.webPath(),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc.string({ unit: 'binary' }),
    fc.constantFrom(
      '//[',
      '//a:99999/',
      'http://[::1',
      '*',
      '/?format=json&format=html',
      '/%',
      '/..%2f..%2f',
    ),
    fc.constantFrom(...injections).map((i) => `/${i}`),
  );
  const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'X');

  it("backend and frontend answer any target with a 2xx or 4xx (a bad target is the client's fault), never a throw", async () => {
    const backend = createBackendHandler({
      instance: async () => ({
        id: '1',
        name: 'backend-1',
        hostname: 'backend-1',
        zone: 'us-central1-a',
        project: 'ilb-test',
        internalIp: '10.0.0.2',
        machineType: 'e2-small',
        tags: [],
        instanceGroup: 'backend',
      }),
      consulNode: async () => ({ node: 'backend-1', nodeId: 'x', datacenter: 'dc1', meta: {} }),
      logger,
    });
    const frontend = createFrontendHandler({
      zone: async () => 'us-central1-a',
      resolve: async () => [],
      fetchUpstream: async () => {
        throw new Error('unused');
      },
      now: () => 0,
      logger,
    });
    await fc.assert(
      fc.asyncProperty(target, method, async (url, m) => {
        for (const [handler, ok] of [
          [backend, [200, 400, 404, 405]],
          [frontend, [200, 400, 404, 405, 502]],
        ] as const) {
          const { r, res } = response();
          await handler({ url, method: m, resume: () => undefined } as unknown as IncomingMessage, res);
          expect(ok).toContain(r.status);
        }
      }),
      runs,
    );
  });
});
