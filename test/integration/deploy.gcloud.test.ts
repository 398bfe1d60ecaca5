/**
 * The deploy rehearsal with the real gcloud (Cloud SDK 528): every request is built by Google's own
 * code and served by the Compute emulator and the stand-in modules (test/rehearsal). The project
 * starts with the legacy role tokens' secrets of an upgraded deployment (the deploy retires them).
 * One pass runs deploy.sh (a dry run, a run that fails mid-way and its resume), deploy.sh again
 * (changes nothing) and teardown.sh (twice: Cloud Run still holds an egress address the first time), and prints the
 * figures for the issue's note: commands and requests per API per phase, mutations, leftovers.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { allApiModules, standInProxyEnvironment } from '../rehearsal/apis';
import type { ProjectFacts } from '../rehearsal/contract';
import { figures, type Item, mutates, type Rehearsal, startRehearsal } from '../rehearsal/harness';
import type { JournalEntry } from '../rehearsal/server';

const root = path.resolve(__dirname, '../..');
const facts: ProjectFacts = { project: 'demo-project', projectNumber: '123456789012' };
const zones = ['us-central1-a', 'us-central1-b', 'us-central1-c'];
// About a second per gcloud command on an idle machine, five on a loaded one; ~450 commands here.
const LONG = 3_600_000;

const itemKey = (i: Item) => `${i.api} ${i.kind} ${i.name}`;
const progress = (line: string) => {
  if (/^step \d+ of \d+/.test(line) || /failed|error|^done:|left for a later run/.test(line))
    process.stdout.write(`${line}\n`);
};
/** What teardown keeps on purpose (infra-scripts/deploy/README.md): the Pub/Sub agent's push-token
 * grant. (The custom roles are soft-deleted for 7 days; the IAM stand-in lists only live roles.) */
const keptOnPurpose = (i: Item) => /serviceAccountTokenCreator/.test(`${i.kind} ${i.name}`);
/** `step N of T: title: already done|nothing to do`, as the runner logs a step it found in place. */
const foundInPlace = (out: string) =>
  out.split('\n').flatMap((l) => {
    const m = /^step (\d+) of \d+: (.*): (?:already done|nothing to do)$/.exec(l);
    return m ? [{ n: Number(m[1]), title: m[2] ?? '' }] : [];
  });

const legacySecrets = ['backend', 'haproxy', 'frontend'].map((role) => `consul-agent-token-${role}`);
const secretNames = (r: Rehearsal) =>
  r
    .inventory()
    .filter((i) => i.api === 'secretmanager')
    .map((i) => i.name.replace(/^.*\/secrets\//, ''));

/** The previous version's deploy made these, labelled as the deployment's, with a first value. */
async function seedLegacySecrets(r: Rehearsal): Promise<void> {
  const gcloud = (args: string[]) =>
    promisify(execFile)('gcloud', [...args, '--project', facts.project], { env: r.env });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ilb-legacy-'));
  try {
    const value = path.join(dir, 'value');
    await writeFile(value, randomUUID());
    for (const name of legacySecrets) {
      await gcloud([
        'secrets',
        'create',
        name,
        '--replication-policy=automatic',
        '--labels=app=gce-ilb-orchestrator,deployment=ilb',
      ]);
      await gcloud(['secrets', 'versions', 'add', name, `--data-file=${value}`]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  expect(secretNames(r).sort()).toEqual([...legacySecrets].sort());
}

describe('scripts', () => {
  it('pass shellcheck', async () => {
    const files = ['deploy.sh', 'teardown.sh', 'build-images.sh', 'deploy/run.sh', 'install-tools.sh'].map(
      (f) => path.join(root, 'infra-scripts', f),
    );
    await promisify(execFile)('shellcheck', ['--severity=style', '-x', ...files]);
  });
});

describe('deploy.sh, again, and teardown.sh with the real gcloud', () => {
  let r: Rehearsal;
  beforeAll(async () => {
    r = await startRehearsal({
      facts,
      zones,
      modules: allApiModules(facts),
      extraEnv: standInProxyEnvironment,
    });
  });
  afterAll(() => r.stop());
  const args = ['--project', facts.project];
  const phases: { phase: string; commands: number; requests: JournalEntry[] }[] = [];
  const run = async (phase: string, name: string, extra: string[] = [], input = '') => {
    const from = r.standIn.journal.length;
    const commands = r.commands().length;
    process.stdout.write(`rehearsal phase: ${phase}\n`);
    const res = await r.script(name, [...args, ...extra], input);
    for (const l of res.out.split('\n')) progress(l);
    const requests = r.standIn.journal.slice(from);
    phases.push({ phase, commands: r.commands().length - commands, requests });
    return { ...res, requests };
  };

  it(
    'dry run runs nothing; a failed first run resumes and creates everything in order; a second changes nothing; teardown leaves nothing',
    async () => {
      // What a deployment of the version before per-instance identity holds: the role write
      // tokens' secrets. The deploy retires them once the groups run their templates.
      await seedLegacySecrets(r);
      const before = r.inventory().map(itemKey);
      const dry = await run('dry run', 'deploy.sh', ['--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.out).toContain('nothing was run');
      expect(dry.requests).toEqual([]);

      // A failure mid-way stops with the command and how to resume; the rerun repeats nothing.
      r.compute.failOnce('POST', /\/global\/instanceTemplates$/);
      const failed = await run('first deploy (fails mid-way)', 'deploy.sh');
      expect(failed.code).toBe(1);
      expect(failed.out).toMatch(/command: gcloud compute instance-templates create ilb-backend-/);
      expect(failed.out).toContain(
        'Fix the cause and run again to resume (finished steps are found and skipped): infra-scripts/deploy.sh --project demo-project',
      );
      const failedAt = Number(
        /step (\d+) of \d+ failed: instance template ilb-backend-/.exec(failed.out)?.[1],
      );
      expect(failed.requests.filter((e) => mutates(e) && e.status < 300).length).toBeGreaterThan(50);

      const first = await run('first deploy (resumed)', 'deploy.sh');
      expect({ code: first.code, tail: first.out.slice(-1500) }).toMatchObject({ code: 0 });
      const total = Number(/done: \d+ of (\d+) steps/.exec(first.out)?.[1]);
      const found = foundInPlace(first.out);
      // Every step before the failure is found in place; after it, only the follow-ups of a group
      // just created (create sets both the paging mode and the template).
      expect(found.filter((f) => f.n < failedAt)).toHaveLength(failedAt - 1);
      expect(found.filter((f) => f.n >= failedAt).map((f) => f.title)).toEqual(
        ['backend', 'haproxy', 'frontend'].flatMap((t) => [
          `ilb-${t} pages listManagedInstances`,
          expect.stringMatching(new RegExp(`^ilb-${t} runs ilb-${t}-\\w+$`)),
        ]),
      );
      expect(first.out).toMatch(
        new RegExp(`done: ${total - found.length} of ${total} steps changed something`),
      );
      expect(await r.compute.emulator.settled(30_000)).toBe(true);
      const made = r.inventory().map(itemKey);
      expect(made.filter((k) => k.includes('compute.instances '))).toHaveLength(3 + 2 + 2 + 1);
      expect(made.filter((k) => k.includes('compute.instanceTemplates '))).toHaveLength(3);
      expect(made.filter((k) => k.includes('compute.autoscalers '))).toHaveLength(2);
      const nat = r.compute.emulator.deploy.network.get('routers', 'us-central1', 'ilb-router');
      expect(nat.nats).toEqual([expect.objectContaining({ name: 'ilb-nat' })]);
      // gcloud first runs `ssh … -- :` until its new key works, then the command with the script:
      // the ACL set, and last the retirement of the legacy role tokens.
      const scripts = r.ssh().filter((c) => c.args.slice(-3).join(' ') === 'sudo bash -s');
      expect(scripts).toHaveLength(2);
      for (const c of scripts) expect(c.args.join(' ')).toContain('compute start-iap-tunnel');
      expect(scripts[0]?.stdin).toContain('consul acl token create');
      expect(scripts[1]?.stdin).toContain('consul acl token delete');
      expect(first.out).toMatch(
        /^step (\d+) of \1: delete secret consul-agent-token-frontend \(legacy role token\)$/m,
      );
      expect(secretNames(r).filter((n) => legacySecrets.includes(n))).toEqual([]);
      expect(secretNames(r)).toContain('consul-agent-token-backend-default');
      expect(r.compute.emulator.deploy.commonMetadataItems().map((m) => m.key)).toEqual(['ssh-keys']);

      const second = await run('second deploy', 'deploy.sh');
      expect(second.code).toBe(0);
      expect(second.out).toMatch(/done: 0 of \d+ steps changed something/);
      const changes = second.requests.filter(mutates);
      expect(changes).toEqual([]);

      const refused = await run('teardown without --yes', 'teardown.sh', [], 'yes\n');
      expect(refused.code).toBe(2);
      expect(refused.requests).toEqual([]);
      // Cloud Run still holds a Direct VPC egress address in the functions' subnet (1-2 hours after
      // the functions go): Compute refuses the subnet's deletion, and the real gcloud's error must
      // match what the plan leaves for a later run.
      const net = r.compute.emulator.deploy.network;
      const held = 'serverless-ipv4-1712345678901234567';
      net.insert('addresses', 'us-central1', {
        name: held,
        subnetwork: 'ilb-fn-egress',
        address: '10.10.16.5',
        purpose: 'SERVERLESS',
      });
      const down = await run('teardown (egress address still held)', 'teardown.sh', ['--yes']);
      expect({ code: down.code, tail: down.out.slice(-1500) }).toMatchObject({ code: 0 });
      expect(down.out).toContain(
        `is already being used by 'projects/demo-project/regions/us-central1/addresses/${held}'`,
      );
      expect(down.out).toContain(
        '2 left for a later run; rerun later to remove: delete subnet ilb-fn-egress (functions egress, 10.10.16.0/26); delete network ilb-net',
      );
      // Later Cloud Run has released it; the next teardown removes the rest.
      net.delete('addresses', 'us-central1', held);
      const later = await run('teardown again (address released)', 'teardown.sh', ['--yes']);
      expect({ code: later.code, tail: later.out.slice(-1500) }).toMatchObject({ code: 0 });
      expect(later.out).toMatch(/done: 2 of \d+ steps changed something/);
      expect(later.out).not.toContain('left for a later run');

      const after = r.inventory();
      // gcloud compute ssh added the operator's key to the project's metadata; the deploy made no
      // such resource and teardown does not remove it (a key the operator keeps using).
      const leftovers = after
        .filter(
          (i) => !before.includes(itemKey(i)) && !keptOnPurpose(i) && i.kind !== 'compute.projectMetadata',
        )
        .map(itemKey);
      expect(leftovers).toEqual([]);
      const unserved = r.standIn.journal.filter((e) => e.unserved);
      expect(unserved).toEqual([]);
      const kept = after.filter(keptOnPurpose).map(itemKey);
      process.stdout.write(
        [
          `rehearsal figures: ${r.commands().length} gcloud commands, ${r.standIn.journal.length} requests, ${unserved.length} unserved`,
          ...phases.map(
            (p) =>
              `  ${p.phase}: ${p.commands} commands, ${p.requests.length} requests (${p.requests.filter(mutates).length} mutating); per API ${JSON.stringify(figures(p.requests))}`,
          ),
          `  second run mutations: ${changes.length}`,
          `  leftovers after teardown: ${leftovers.length}; kept on purpose: ${kept.join(', ') || 'none'}`,
          '',
        ].join('\n'),
      );
    },
    LONG,
  );
});
