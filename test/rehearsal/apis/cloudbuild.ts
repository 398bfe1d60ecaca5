/**
 * Cloud Build, as far as `gcloud functions deploy` asks it: the project's default build service
 * account when no `--build-service-account` is given. New projects get the Compute Engine default
 * account (https://cloud.google.com/build/docs/cloud-build-service-account-updates), on which gcloud
 * then checks for roles/cloudbuild.builds.builder and warns.
 */
import type { ApiModule, ProjectFacts } from '../contract';
import { guard, notFound, router } from './kit';

export function cloudBuildModule(facts: ProjectFacts): ApiModule {
  const route = router([
    [
      'GET /v1/projects/{project}/locations/{location}/defaultServiceAccount',
      (_req, p) => {
        if (p.project !== facts.project && p.project !== facts.projectNumber)
          notFound(`Project ${p.project}`);
        return {
          status: 200,
          body: {
            name: `projects/${facts.project}/locations/${p.location}/defaultServiceAccount`,
            serviceAccountEmail: `projects/${facts.project}/serviceAccounts/${facts.projectNumber}-compute@developer.gserviceaccount.com`,
          },
        };
      },
    ],
  ]);
  return { name: 'cloudbuild', handle: guard(route), inventory: () => [] };
}
