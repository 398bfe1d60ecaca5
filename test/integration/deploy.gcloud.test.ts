/**
 * The deploy rehearsal with the real gcloud (Cloud SDK 528): every request is built by Google's own
 * code and served by the Compute emulator and the stand-in modules (test/rehearsal). A first deploy
 * creates everything in order, a second changes nothing, teardown leaves nothing the deploy made.
 * Figures (commands, requests per API, mutations, leftovers) are printed for the note.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { resolveConfig } from '../../infra-scripts/deploy/config';
import { generators, readInputs } from '../../infra-scripts/deploy/main';
import { deployPlan, type Plan } from '../../infra-scripts/deploy/plan';
import { runPlan } from '../../infra-scripts/deploy/runner';
import { teardownPlan } from '../../infra-scripts/deploy/teardown';
import type { ApiModule, ProjectFacts } from '../rehearsal/contract';
import { figures, type Item, mutates, type Rehearsal, startRehearsal } from '../rehearsal/harness';

const root = path.resolve(__dirname, '../..');
const facts: ProjectFacts = { project: 'demo-project', projectNumber: '123456789012' };
const zones = ['us-central1-a', 'us-central1-b', 'us-central1-c'];
// About a second per gcloud command on an idle machine, five on a loaded one; ~200 commands here.
const LONG = 2_400_000;

const itemKey = (i: Item) => `${i.api} ${i.kind} ${i.name}`;
const progress = (line: string) => {
  if (/^step \d+ of \d+/.test(line) || /failed|error/.test(line)) process.stdout.write(`${line}\n`);
};

/** The steps that only call `gcloud compute` (the ACL bootstrap's check reads a secret: not one). */
function computeOnly(plan: Plan): Plan {
  const isCompute = (args: string[]) => args[0] === 'compute';
  return {
    ...plan,
    steps: plan.steps.filter((s) => isCompute(s.check.args) && s.run.every((c) => isCompute(c.args))),
  };
}

describe('every gcloud compute command of the deploy, served by the Compute emulator', () => {
  let r: Rehearsal;
  beforeAll(async () => {
    r = await startRehearsal({ facts, zones, modules: [] });
  });
  afterAll(() => r.stop());

  it(
    'first run creates every compute resource in order, a second changes nothing, teardown leaves nothing',
    async () => {
      const config = resolveConfig({ project: facts.project });
      const inputs = readInputs(root);
      const log: string[] = [];
      const opts = {
        exec: r.exec,
        generators,
        log: (l: string) => {
          log.push(l);
          progress(l);
        },
        rerun: 'x',
      };
      const before = r.inventory().map(itemKey);
      const deploy = computeOnly(deployPlan(config, inputs));
      // A failure mid-way stops with the command and how to resume; the rerun repeats nothing.
      r.compute.failOnce('POST', /\/global\/instanceTemplates$/);
      const failed = await runPlan(deploy, {
        ...opts,
        rerun: 'infra-scripts/deploy.sh --project demo-project',
      });
      expect(failed).toMatchObject({
        ok: false,
        command: expect.stringMatching(/^gcloud compute instance-templates create ilb-backend-/),
      });
      expect(log.join('\n')).toContain('Fix the cause and run again to resume');
      const made0 = r.standIn.journal.filter((e) => mutates(e) && e.status < 300).length;
      log.length = 0;
      const first = await runPlan(deploy, opts);
      expect(first.ok ? 'ok' : log.slice(-6).join('\n')).toBe('ok');
      expect(
        log
          .filter((l) => /^step \d+ of \d+: (network|subnet|firewall|Consul server)/.test(l))
          .every((l) => l.endsWith('already done')),
      ).toBe(true);
      expect(made0).toBeGreaterThan(20);
      // From the step that failed on: only the follow-ups of a group just created find their work done
      // (create sets both the paging mode and the template).
      const resumedAt = deploy.steps.findIndex((st) => st.title.startsWith('instance template ilb-backend-'));
      const found = log
        .slice(log.findIndex((l) => l.startsWith(`step ${resumedAt + 1} of `)))
        .filter((l) => l.endsWith(': already done'))
        .map((l) => l.replace(/^step \d+ of \d+: /, ''));
      expect(found).toEqual(
        ['backend', 'haproxy', 'frontend'].flatMap((t) => [
          `ilb-${t} pages listManagedInstances: already done`,
          expect.stringMatching(new RegExp(`^ilb-${t} runs ilb-${t}-\\w+: already done$`)),
        ]),
      );
      expect(first).toMatchObject({ ran: deploy.steps.length - resumedAt - found.length });
      expect(await r.compute.emulator.settled(30_000)).toBe(true);
      const made = r.inventory().map(itemKey);
      expect(made.filter((k) => k.includes('compute.instances '))).toHaveLength(3 + 2 + 2 + 1);
      for (const kind of ['networks', 'subnetworks', 'routers', 'firewalls', 'addresses', 'healthChecks']) {
        expect([kind, made.some((k) => k.includes(`compute.${kind} `))]).toEqual([kind, true]);
      }
      expect(made.filter((k) => k.includes('compute.instanceTemplates '))).toHaveLength(3);
      expect(made.filter((k) => k.includes('compute.autoscalers '))).toHaveLength(2);
      const nat = r.compute.emulator.deploy.network.get('routers', 'us-central1', 'ilb-router');
      expect(nat.nats).toEqual([expect.objectContaining({ name: 'ilb-nat' })]);

      // The ACL bootstrap's ssh (its check reads a secret, so it is run here by itself): gcloud makes
      // a key, reads the instance and the project, adds the key to the project's metadata, execs ssh.
      const acl = deployPlan(config, inputs)
        .steps.flatMap((st) => st.run)
        .find((c) => c.args[1] === 'ssh');
      const sshed = await r.exec(acl?.args ?? [], 'echo acl script\n');
      expect({ code: sshed.code, err: sshed.stderr.slice(-500) }).toMatchObject({ code: 0 });
      expect(r.ssh().at(-1)).toMatchObject({ stdin: 'echo acl script\n' });
      expect(r.ssh().at(-1)?.args.slice(-3)).toEqual(['sudo', 'bash', '-s']);
      expect(r.compute.emulator.deploy.commonMetadataItems().map((m) => m.key)).toEqual(['ssh-keys']);
      const afterFirst = r.standIn.journal.length;

      const second = await runPlan(deploy, opts);
      expect(second).toMatchObject({ ok: true, ran: 0 });
      const secondRun = r.standIn.journal.slice(afterFirst);
      expect(secondRun.filter(mutates)).toEqual([]);

      // Cloud Run still holds a Direct VPC egress address in the functions' subnet (1-2 hours after the
      // functions go): Compute refuses the subnet's deletion, and the real gcloud's error must match
      // what the plan leaves for a later run.
      const net = r.compute.emulator.deploy.network;
      const held = 'serverless-ipv4-1712345678901234567';
      net.insert('addresses', 'us-central1', {
        name: held,
        subnetwork: 'ilb-fn-egress',
        address: '10.10.16.5',
        purpose: 'SERVERLESS',
      });
      const teardown = computeOnly(teardownPlan(config, inputs));
      const down = await runPlan(teardown, opts);
      expect(down.ok ? down : log.slice(-6).join('\n')).toMatchObject({
        ok: true,
        left: ['delete subnet ilb-fn-egress (functions egress, 10.10.16.0/26)', 'delete network ilb-net'],
      });
      expect(log.join('\n')).toContain(
        `is already being used by 'projects/demo-project/regions/us-central1/addresses/${held}'`,
      );
      // Later Cloud Run has released it; the next teardown removes the rest.
      net.delete('addresses', 'us-central1', held);
      const later = await runPlan(teardown, opts);
      expect(later.ok ? later : log.slice(-6).join('\n')).toMatchObject({ ok: true, ran: 2 });
      expect(later.ok && later.left).toBeUndefined();
      // The operator's ssh key stays in the project's metadata: the deploy made no such resource.
      const leftovers = r
        .inventory()
        .filter((i) => i.kind !== 'compute.projectMetadata')
        .map(itemKey)
        .filter((k) => !before.includes(k));
      expect(leftovers).toEqual([]);
      expect(r.standIn.journal.filter((e) => e.unserved)).toEqual([]);
      process.stdout.write(
        `compute rehearsal: ${r.commands().length} gcloud commands; requests ${JSON.stringify(figures(r.standIn.journal))}; ` +
          `second run mutations ${secondRun.filter(mutates).length}; leftovers ${leftovers.length}\n`,
      );
    },
    LONG,
  );
});

describe('scripts', () => {
  it('pass shellcheck', async () => {
    const files = ['deploy.sh', 'teardown.sh', 'build-images.sh', 'deploy/run.sh', 'install-tools.sh'].map(
      (f) => path.join(root, 'infra-scripts', f),
    );
    await promisify(execFile)('shellcheck', ['--severity=style', '-x', ...files]);
  });
});

// The stand-in modules for the other APIs (test/rehearsal/apis, written alongside this harness): the
// whole deploy.sh needs them; without them only the compute part above can run.
const apisIndex = path.join(root, 'test/rehearsal/apis/index.ts');
type AllApiModules = (facts: ProjectFacts) => ApiModule[];
const loadModules = (): AllApiModules =>
  (require(apisIndex) as { allApiModules: AllApiModules }).allApiModules; // eslint-disable-line @typescript-eslint/no-require-imports
/** What teardown keeps on purpose (infra-scripts/deploy/README.md): the Pub/Sub agent's push-token
 * grant, and the custom roles, soft-deleted for 7 days. */
const keptOnPurpose = (i: Item) =>
  /serviceAccountTokenCreator/.test(`${i.kind} ${i.name}`) || (i.api === 'iam' && /roles\/ilb_/.test(i.name));

(existsSync(apisIndex) ? describe : describe.skip)(
  'deploy.sh, again, and teardown.sh with the real gcloud',
  () => {
    let r: Rehearsal;
    beforeAll(async () => {
      r = await startRehearsal({ facts, zones, modules: loadModules()(facts) });
    });
    afterAll(() => r.stop());
    const args = ['--project', facts.project];
    const run = async (name: string, extra: string[] = [], input = '') => {
      const from = r.standIn.journal.length;
      const res = await r.script(name, [...args, ...extra], input);
      for (const l of res.out.split('\n')) progress(l);
      return { ...res, requests: r.standIn.journal.slice(from) };
    };

    it(
      'dry run runs nothing; first run creates everything in order; second changes nothing; teardown leaves nothing',
      async () => {
        const before = r.inventory().map(itemKey);
        const dry = await run('deploy.sh', ['--dry-run']);
        expect(dry.code).toBe(0);
        expect(dry.out).toContain('nothing was run');
        expect(dry.requests).toEqual([]);

        const first = await run('deploy.sh');
        expect({ code: first.code, tail: first.out.slice(-1500) }).toMatchObject({ code: 0 });
        const total = Number(/done: \d+ of (\d+) steps/.exec(first.out)?.[1]);
        const found = first.out.split('\n').filter((l) => l.endsWith(': already done'));
        process.stdout.write(
          `first run: steps found done by an earlier step of the same run:\n${found.join('\n')}\n`,
        );
        expect(first.out).toMatch(
          new RegExp(`done: ${total - found.length} of ${total} steps changed something`),
        );
        // gcloud first runs `ssh … -- :` until its new key works, then the command with the script.
        const ssh = r.ssh();
        expect(ssh.at(-1)?.args.slice(-3)).toEqual(['sudo', 'bash', '-s']);
        expect(ssh.at(-1)?.args.join(' ')).toContain('compute start-iap-tunnel');
        expect(ssh.at(-1)?.stdin).toContain('consul acl token create');

        const second = await run('deploy.sh');
        expect(second.code).toBe(0);
        expect(second.out).toMatch(/done: 0 of \d+ steps changed something/);
        const changes = second.requests.filter(mutates);
        expect(changes).toEqual([]);

        const refused = await run('teardown.sh', [], 'yes\n');
        expect(refused.code).toBe(2);
        expect(refused.requests).toEqual([]);
        const down = await run('teardown.sh', ['--yes']);
        expect({ code: down.code, tail: down.out.slice(-1500) }).toMatchObject({ code: 0 });
        const after = r.inventory();
        // gcloud compute ssh added the operator's key to the project's metadata; the deploy made no
        // such resource and teardown does not remove it (a key the operator keeps using).
        const leftovers = after
          .filter(
            (i) => !before.includes(itemKey(i)) && !keptOnPurpose(i) && i.kind !== 'compute.projectMetadata',
          )
          .map(itemKey);
        expect(leftovers).toEqual([]);
        expect(r.standIn.journal.filter((e) => e.unserved)).toEqual([]);
        process.stdout.write(
          `rehearsal: ${r.commands().length} gcloud commands, ${r.standIn.journal.length} requests; per API ${JSON.stringify(figures(r.standIn.journal))}; ` +
            `second run mutations ${changes.length}; leftovers ${leftovers.length}; ` +
            `kept on purpose ${after.filter(keptOnPurpose).length}\n`,
        );
      },
      3 * LONG,
    );
  },
);
