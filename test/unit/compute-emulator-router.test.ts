import { Router, route } from '../../infra-scripts/local/compute-emulator/router';

const handler = () => undefined;
const router = new Router([
  route(
    'GET',
    '/compute/v1/projects/:project/:scopeKind(zones|regions)/:location/instanceGroupManagers',
    handler,
  ),
  route(
    ['PATCH', 'PUT'],
    '/compute/v1/projects/:project/:scopeKind(zones|regions)/:location/autoscalers',
    handler,
  ),
  route('POST', '/c/:igm/:action(deleteInstances|abandonInstances)', handler),
  route('POST', '/c/:igm/resize', handler),
]);

test('named parameters take the path segments they stand for', () => {
  const hit = router.match('GET', '/compute/v1/projects/p1/regions/us-central1/instanceGroupManagers');
  expect(hit?.params).toEqual({ project: 'p1', scopeKind: 'regions', location: 'us-central1' });
});

test('a parameter with listed values matches only those', () => {
  expect(router.match('POST', '/c/g/abandonInstances')?.params).toEqual({
    igm: 'g',
    action: 'abandonInstances',
  });
  expect(router.match('POST', '/c/g/recreateInstances')).toBeUndefined();
  expect(router.match('GET', '/compute/v1/projects/p/global/x/instanceGroupManagers')).toBeUndefined();
  // A fixed segment is not taken for a parameter of another route.
  expect(router.match('POST', '/c/g/resize')?.params).toEqual({ igm: 'g' });
});

test('a route answers only its methods', () => {
  const path = '/compute/v1/projects/p/zones/z/autoscalers';
  expect(router.match('PUT', path)).toBeDefined();
  expect(router.match('PATCH', path)).toBeDefined();
  expect(router.match('GET', path)).toBeUndefined();
});

test('a parameter never spans a slash nor matches an empty segment', () => {
  expect(router.match('POST', '/c/a/b/resize')).toBeUndefined();
  expect(router.match('POST', '/c//resize')).toBeUndefined();
  expect(router.match('GET', '/compute/v1/projects/p/zones/z/instanceGroupManagers/')).toBeUndefined();
  expect(router.match('GET', 'compute/v1/projects/p/zones/z/instanceGroupManagers')).toBeUndefined();
});
