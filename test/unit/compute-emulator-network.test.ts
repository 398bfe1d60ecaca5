import { ApiError } from '../../infra-scripts/local/compute-emulator/errors';
import { NetworkResources } from '../../infra-scripts/local/compute-emulator/network-resources';

let n = 0;
const fresh = () =>
  new NetworkResources('p', { numericId: () => String(++n) }, () => '2026-01-01T00:00:00.000Z');
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof ApiError ? { code: err.code, reason: err.reason, message: err.message } : err;
  }
  return 'not refused';
};

describe('the emulator’s network resources', () => {
  it('links by name, refuses a duplicate, a missing network and deleting what is still used', () => {
    const net = fresh();
    expect(
      refusal(() => net.insert('subnetworks', 'r1', { name: 's', network: 'n', ipCidrRange: '10.0.0.0/24' })),
    ).toMatchObject({ code: 404 });
    net.insert('networks', 'global', { name: 'n', autoCreateSubnetworks: false });
    expect(refusal(() => net.insert('networks', 'global', { name: 'n' }))).toMatchObject({
      code: 409,
      reason: 'alreadyExists',
    });
    net.insert('subnetworks', 'r1', { name: 's', network: 'global/networks/n', ipCidrRange: '10.0.0.0/24' });
    expect(net.get('subnetworks', 'r1', 's')).toMatchObject({
      network: 'https://www.googleapis.com/compute/v1/projects/p/global/networks/n',
      gatewayAddress: '10.0.0.1',
      region: 'https://www.googleapis.com/compute/v1/projects/p/regions/r1',
    });
    net.insert('addresses', 'r1', { name: 'a', subnetwork: 's', address: '10.0.0.10' });
    net.insert('addresses', 'r1', { name: 'pub' });
    expect(net.get('addresses', 'r1', 'a')).toMatchObject({ addressType: 'INTERNAL', status: 'RESERVED' });
    expect(net.get('addresses', 'r1', 'pub')).toMatchObject({
      addressType: 'EXTERNAL',
      address: expect.any(String),
    });
    expect(refusal(() => net.delete('networks', 'global', 'n'))).toMatchObject({
      code: 400,
      reason: 'resourceInUseByAnotherResource',
      message: expect.stringContaining("is already being used by 'projects/p/regions/r1/subnetworks/s'"),
    });
    expect(refusal(() => net.delete('subnetworks', 'r1', 's'))).toMatchObject({ code: 400 });
    net.delete('addresses', 'r1', 'a');
    net.delete('addresses', 'r1', 'pub');
    net.delete('subnetworks', 'r1', 's');
    net.delete('networks', 'global', 'n');
    expect(net.inventory()).toEqual([]);
  });

  it('keeps a Cloud NAT in its router, as routers.patch writes it, and finds images by family', () => {
    const net = fresh();
    net.insert('networks', 'global', { name: 'n' });
    net.insert('routers', 'r1', { name: 'rt', network: 'n' });
    net.patch('routers', 'r1', 'rt', { nats: [{ name: 'nat', natIpAllocateOption: 'AUTO_ONLY' }] });
    expect(net.get('routers', 'r1', 'rt').nats).toEqual([{ name: 'nat', natIpAllocateOption: 'AUTO_ONLY' }]);
    expect(refusal(() => net.patch('routers', 'r1', 'rt', { nats: [{ name: 'Bad' }] }))).toMatchObject({
      code: 400,
    });
    net.seedImage('ilb-consul-v1', 'ilb-consul');
    net.seedImage('ilb-consul-v2', 'ilb-consul');
    expect(net.fromFamily('ilb-consul').name).toBe('ilb-consul-v2');
    expect(refusal(() => net.fromFamily('nope'))).toMatchObject({ code: 404 });
  });
});
