/**
 * The stand-in modules' rules that gcloud alone does not reach: IAM policy etags and conditions,
 * the 7-day undelete window of custom roles, CRC32C of secret payloads, the dashboard shape.
 */
import { allApiModules } from '../rehearsal/apis';
import { dashboardSchema } from '../rehearsal/apis/dashboard-schema';
import { applyMask } from '../rehearsal/apis/kit';
import { crc32c } from '../rehearsal/apis/secretmanager';
import type { ApiModule, ApiResponse } from '../rehearsal/contract';

const facts = { project: 'demo-project', projectNumber: '123456789012' };
const DAY = 24 * 3600 * 1000;

function client(modules: ApiModule[]) {
  return async (api: string, method: string, path: string, body?: unknown): Promise<ApiResponse> => {
    const [p, q = ''] = path.split('?');
    const m = modules.find((x) => x.name === api);
    const answer = await m?.handle({
      method,
      path: p ?? '',
      query: new URLSearchParams(q),
      body,
      raw: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      base: `http://stand-in/${api}`,
    });
    if (!answer) throw new Error(`unserved ${method} ${path}`);
    return answer;
  };
}

describe('rehearsal stand-in modules', () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const call = client(allApiModules(facts, { clock: () => now }));

  it('custom roles: deleted roles read back deleted, undelete within 7 days only, IDs not reused', async () => {
    const role = { title: 't', includedPermissions: ['compute.instances.get'], stage: 'GA' };
    expect(
      (await call('iam', 'POST', '/v1/projects/demo-project/roles', { roleId: 'ilb_r1', role })).status,
    ).toBe(200);
    expect(
      (await call('iam', 'POST', '/v1/projects/demo-project/roles', { roleId: 'ilb_r2', role })).status,
    ).toBe(200);
    await call('iam', 'DELETE', '/v1/projects/demo-project/roles/ilb_r1');
    await call('iam', 'DELETE', '/v1/projects/demo-project/roles/ilb_r2');
    expect((await call('iam', 'GET', '/v1/projects/demo-project/roles/ilb_r1')).body).toMatchObject({
      deleted: true,
    });
    expect(
      (await call('iam', 'POST', '/v1/projects/demo-project/roles', { roleId: 'ilb_r1', role })).status,
    ).toBe(409);
    now += 6 * DAY;
    expect((await call('iam', 'POST', '/v1/projects/demo-project/roles/ilb_r1:undelete', {})).status).toBe(
      200,
    );
    now += 2 * DAY;
    const late = await call('iam', 'POST', '/v1/projects/demo-project/roles/ilb_r2:undelete', {});
    expect(late).toMatchObject({ status: 400, body: { error: { status: 'FAILED_PRECONDITION' } } });
    const unknownPermission = await call('iam', 'POST', '/v1/projects/demo-project/roles', {
      roleId: 'ilb_r3',
      role: { ...role, includedPermissions: ['nosuch.things.get'] },
    });
    expect(unknownPermission.status).toBe(400);
  });

  it('IAM policies: stale etag aborts, conditions need version 3, version 1 reads show _withcond_', async () => {
    const policy = async () =>
      (await call('cloudresourcemanager', 'POST', '/v1/projects/demo-project:getIamPolicy', {})).body as {
        etag: string;
      };
    const first = await policy();
    const binding = { role: 'roles/logging.logWriter', members: ['user:a@example.com'] };
    const set = (p: unknown) =>
      call('cloudresourcemanager', 'POST', '/v1/projects/demo-project:setIamPolicy', { policy: p });
    expect((await set({ bindings: [binding], etag: first.etag })).status).toBe(200);
    expect(await set({ bindings: [], etag: first.etag })).toMatchObject({
      status: 409,
      body: { error: { status: 'ABORTED' } },
    });
    const conditional = {
      ...binding,
      condition: { title: 'until', expression: 'request.time < timestamp("2030-01-01T00:00:00Z")' },
    };
    expect((await set({ version: 1, bindings: [conditional] })).status).toBe(400);
    expect((await set({ version: 3, bindings: [conditional] })).status).toBe(200);
    const v1 = await call('cloudresourcemanager', 'POST', '/v1/projects/demo-project:getIamPolicy', {});
    expect(JSON.stringify(v1.body)).toMatch(/roles\/logging\.logWriter_withcond_/);
    const v3 = await call('cloudresourcemanager', 'POST', '/v1/projects/demo-project:getIamPolicy', {
      options: { requestedPolicyVersion: 3 },
    });
    expect(v3.body).toMatchObject({ version: 3, bindings: [conditional] });
    expect(
      (
        await set({
          bindings: [
            { role: 'roles/x', members: ['serviceAccount:ghost@demo-project.iam.gserviceaccount.com'] },
          ],
        })
      ).status,
    ).toBe(400);
    expect((await set({ bindings: [binding], bogus: 1 })).status).toBe(400);
  });

  it('secret payloads carry a CRC32C that must match', async () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    await call('secretmanager', 'POST', '/v1/projects/demo-project/secrets?secretId=s', {
      replication: { automatic: {} },
    });
    const data = Buffer.from('hello').toString('base64');
    const bad = await call('secretmanager', 'POST', '/v1/projects/demo-project/secrets/s:addVersion', {
      payload: { data, dataCrc32c: '1' },
    });
    expect(bad.status).toBe(400);
    const good = await call('secretmanager', 'POST', '/v1/projects/demo-project/secrets/s:addVersion', {
      payload: { data, dataCrc32c: String(crc32c(Buffer.from('hello'))) },
    });
    expect(good.body).toMatchObject({ name: 'projects/123456789012/secrets/s/versions/1', state: 'ENABLED' });
  });

  it("dashboards: the deploy's shape, tiles inside the grid and not overlapping, name and etag read back", () => {
    const widget = {
      title: 'w',
      xyChart: {
        dataSets: [
          { timeSeriesQuery: { timeSeriesFilter: { filter: 'metric.type="custom.googleapis.com/ilb/x"' } } },
        ],
      },
    };
    const tile = (xPos: number, width: number) => ({ xPos, yPos: 0, width, height: 4, widget });
    const mosaic = (columns: number, ...tiles: ReturnType<typeof tile>[]) => ({
      displayName: 'd',
      mosaicLayout: { columns, tiles },
    });
    const ok = mosaic(48, tile(0, 24), tile(24, 24));
    expect(dashboardSchema.safeParse(ok).success).toBe(true);
    expect(dashboardSchema.safeParse({ ...ok, name: 'projects/1/dashboards/x', etag: 'e' }).success).toBe(
      true,
    );
    expect(dashboardSchema.safeParse(mosaic(12, tile(6, 12))).success).toBe(false);
    const overlapping = dashboardSchema.safeParse(mosaic(48, tile(0, 24), tile(12, 24)));
    expect(overlapping.error?.issues.map((i) => i.message)).toEqual([
      'mosaic tiles must not overlap (cell 12,0 is in two)',
    ]);
    expect(dashboardSchema.safeParse({ ...ok, gridLayout: { widgets: [widget] } }).success).toBe(false);
    const mixed = mosaic(48, {
      ...tile(0, 4),
      widget: { ...widget, text: { content: 'x' } } as typeof widget,
    });
    expect(dashboardSchema.safeParse(mixed).success).toBe(false);
    const noMetric = mosaic(48, {
      ...tile(0, 4),
      widget: {
        ...widget,
        xyChart: {
          dataSets: [{ timeSeriesQuery: { timeSeriesFilter: { filter: 'resource.type="gce_instance"' } } }],
        },
      },
    });
    expect(dashboardSchema.safeParse(noMetric).success).toBe(false);
  });

  it('update masks: snake_case paths as gcloud sends them, nested fields, removal', () => {
    const current: Record<string, unknown> = {
      buildConfig: { runtime: 'nodejs22', source: { storageSource: { object: 'old.zip' } } },
      labels: { a: '1' },
    };
    const patch: Record<string, unknown> = {
      buildConfig: { source: { storageSource: { object: 'new.zip' } } },
    };
    expect(applyMask(current, patch, 'build_config.source,labels')).toEqual({
      buildConfig: { runtime: 'nodejs22', source: { storageSource: { object: 'new.zip' } } },
    });
  });
});
