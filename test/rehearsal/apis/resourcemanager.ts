/**
 * Cloud Resource Manager: the one project (v1 and v3 reads, as gcloud uses both) and its IAM policy.
 * The policy of a project is where the deploy's role grants live, so the rehearsal checks them here.
 */
import type { ApiModule, ProjectFacts } from '../contract';
import type { PolicyStore } from './iam-policy';
import { guard, notFound, router } from './kit';

export function resourceManagerModule(facts: ProjectFacts, policies: PolicyStore): ApiModule {
  const { project, projectNumber } = facts;
  const createTime = '2024-01-02T03:04:05.000Z';
  const known = (p: string | undefined): string =>
    p === project || p === projectNumber ? `projects/${project}` : notFound(`Project ${p}`);
  const route = router([
    [
      'GET /v1/projects/{project}',
      (_req, p) => {
        known(p.project);
        return {
          status: 200,
          body: { projectNumber, projectId: project, lifecycleState: 'ACTIVE', name: project, createTime },
        };
      },
    ],
    [
      'GET /v3/projects/{project}',
      (_req, p) => {
        known(p.project);
        return {
          status: 200,
          body: {
            name: `projects/${projectNumber}`,
            parent: 'organizations/123456789012',
            projectId: project,
            state: 'ACTIVE',
            displayName: project,
            createTime,
            etag: 'W/"0"',
          },
        };
      },
    ],
    ['POST /{v}/projects/{project}:getIamPolicy', (req, p) => policies.get(known(p.project), req)],
    ['POST /{v}/projects/{project}:setIamPolicy', (req, p) => policies.set(known(p.project), req)],
  ]);
  return {
    name: 'cloudresourcemanager',
    handle: guard(route),
    // The project itself is not the deploy's; its grants are listed so teardown can be checked.
    inventory: () =>
      policies
        .bindings(`projects/${project}`)
        .flatMap((b) => b.members.map((m) => ({ kind: 'projectBinding', name: `${b.role} ${m}` }))),
  };
}
