/**
 * Attack suite, healthSweep (issue 18, part 3): from the seat of one backend VM of the sandbox,
 * with the Consul token that VM holds (its own identity login), try to make the sweep act against
 * another, healthy backend: a forged critical check, a rewritten gce-instance-id; and plant a
 * catalog-only node the sweep used to leave alone for ever. The VM's token is refused all three; the
 * sweep's own checks are the second line against whatever can still write them (a compromised server
 * or operator token: the management token here). The whole sandbox runs (Compute emulator, real
 * instances, the sweep on Cloud Scheduler's ticks).
 */
import { ensureAppsBuilt } from '../../infra-scripts/local/instance/build';
import { createLogger } from '../../shared/logging';
import { nodeMetaKeys } from '../../shared/contract';
import { startSandbox, type Sandbox } from '../../infra-scripts/local/scenarios/sandbox';
import { sandboxSweepThresholds } from '../../infra-scripts/local/scenarios/topology';
import { randomLoopbackPrefix } from '../harness';
import { agentTokenOf } from '../integration/system-support';

jest.setTimeout(420_000);

const sweepIntervalMs = 5000;
let sb: Sandbox;
const out: string[] = [];

beforeAll(async () => {
  // The functions and the instances run from dist/.
  await ensureAppsBuilt();
  sb = await startSandbox({
    logger: createLogger({ name: 'sweep-identity', level: process.env.LOG_LEVEL ?? 'warn' }),
    prefix: randomLoopbackPrefix(),
    statusPort: 0,
    sweepIntervalMs,
    progress: (line) => void out.push(line),
  });
}, 360_000);

afterAll(async () => {
  await sb?.stop();
  process.stdout.write(`${out.join('\n')}\n`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const node = (name: string) => sb.consul.read((c) => c.catalog.node(name));
const backends = () =>
  sb.compute.emulator
    .allInstances()
    .filter((i) => i.status === 'RUNNING' && i.name.startsWith('backend-'))
    .sort((a, b) => (a.name < b.name ? -1 : 1));

async function asVm(token: string, path: string, body: object): Promise<number> {
  const res = await fetch(`${sb.consul.servers[0]!.httpAddr}${path}`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': token },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

/** The sweep's identity findings (node → reasons) since `from`. */
function findings(from: number): Map<string, Set<string>> {
  const seen = new Map<string, Set<string>>();
  for (const line of sb.functionLogs('healthSweep')) {
    if (typeof line.time !== 'string' || Date.parse(line.time) < from || !Array.isArray(line.identity))
      continue;
    for (const f of line.identity as Array<{ node: string; reason: string }>) {
      seen.set(f.node, (seen.get(f.node) ?? new Set()).add(f.reason));
    }
  }
  return seen;
}

test('a backend VM cannot make the sweep recreate or deregister another backend; its catalog-only node is removed', async () => {
  let pair: ReturnType<typeof backends> = [];
  for (let i = 0; i < 120 && pair.length < 2; i++) {
    const running = backends();
    const registered = await Promise.all(
      running.map(async (b) => (await node(b.name))?.meta[nodeMetaKeys.instanceId] === b.id),
    );
    pair = running.filter((_, j) => registered[j]);
    if (pair.length < 2) await sleep(1000);
  }
  expect(pair.length).toBeGreaterThanOrEqual(2);
  const [seat, victim] = pair as [(typeof pair)[number], (typeof pair)[number]];
  const own = await agentTokenOf(sb.instanceRoot(seat.id)!);
  expect(own).toMatch(/^[0-9a-f-]{36}$/);
  const victimNode = (await node(victim.name))!;
  const from = Date.now();
  const forgeries: [string, object][] = [
    // 1. A critical check on the victim's node, under an id no agent of ours registers.
    [
      'foreign check',
      {
        Node: victim.name,
        Address: victimNode.address,
        SkipNodeUpdate: true,
        Check: { CheckID: 'evil', Name: 'evil', Status: 'critical' },
      },
    ],
    // 2. Re-identification: the victim's node now claims an id no instance has.
    [
      're-identification',
      {
        Node: victim.name,
        Address: victimNode.address,
        NodeMeta: { ...victimNode.meta, [nodeMetaKeys.instanceId]: '1999999999999999999' },
      },
    ],
    // 3. A catalog-only backend node (no agent, no serfHealth): before, only a person removed it.
    [
      'catalog-only node',
      {
        Node: 'backend-zz9',
        Address: '192.0.2.9',
        Service: { Service: 'backend', Port: 8080, Address: '192.0.2.9', Tags: [victim.zone] },
      },
    ],
  ];
  for (const [, body] of forgeries) expect(await asVm(own, '/v1/catalog/register', body)).toBe(403);
  for (const [, body] of forgeries)
    expect(await asVm(sb.consul.token, '/v1/catalog/register', body)).toBe(200);

  // Past the sandbox's broken grace and a few sweeps more.
  const deadline = from + sandboxSweepThresholds.brokenGraceSeconds * 1000 + 6 * sweepIntervalMs;
  let rogueGoneAt: number | undefined;
  while (Date.now() < deadline) {
    if (rogueGoneAt === undefined && (await node('backend-zz9')) === null) rogueGoneAt = Date.now();
    expect(await node(victim.name)).not.toBeNull();
    await sleep(1000);
  }
  const after = sb.compute.emulator.allInstances().find((i) => i.name === victim.name);
  const seen = findings(from);
  out.push(
    `sweep-identity: victim ${victim.name} id ${victim.id} -> ${after?.id} ${after?.status}; ` +
      `rogue removed after ${rogueGoneAt === undefined ? 'never' : `${rogueGoneAt - from} ms`}; ` +
      `findings ${JSON.stringify([...seen].map(([n, r]) => [n, [...r]]))}`,
  );
  // Not recreated (same id, running), not deregistered.
  expect(after).toMatchObject({ id: victim.id, status: 'RUNNING' });
  expect(await node(victim.name)).not.toBeNull();
  expect(rogueGoneAt).toBeDefined();
  expect([...(seen.get(victim.name) ?? [])].sort()).toEqual(
    expect.arrayContaining(['foreign-check', 'identity-disputed']),
  );
  expect(seen.get('backend-zz9')).toEqual(new Set(['not-a-member']));
});
