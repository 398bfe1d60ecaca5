/**
 * Service Usage: gcloud asks whether an API is enabled before some commands (functions deploy asks
 * for run, cloudbuild, artifactregistry). Every service is enabled here; nothing is created.
 */
import type { ApiModule, ProjectFacts } from '../contract';
import { guard, notFound, router } from './kit';

export function serviceUsageModule(facts: ProjectFacts): ApiModule {
  const route = router([
    [
      'GET /v1/projects/{project}/services/{service}',
      (_req, p) => {
        if (p.project !== facts.project && p.project !== facts.projectNumber)
          notFound(`Project ${p.project}`);
        const parent = `projects/${facts.projectNumber}`;
        return {
          status: 200,
          body: {
            name: `${parent}/services/${p.service}`,
            parent,
            state: 'ENABLED',
            config: { name: p.service },
          },
        };
      },
    ],
  ]);
  return { name: 'serviceusage', handle: guard(route), inventory: () => [] };
}
