// The TypeScript SDK (compiled to dist/) against a live `berth serve`
// (BERTH_URL, BERTH_TOKEN with the admin scope), with node's test runner.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const sdk = require('../dist');

function apis(token = process.env.BERTH_TOKEN) {
  const configuration = new sdk.Configuration({ basePath: process.env.BERTH_URL, accessToken: token });
  return {
    registries: new sdk.RegistriesApi(configuration),
    proxies: new sdk.UpstreamProxiesApi(configuration),
    audit: new sdk.AuditApi(configuration),
  };
}

const unique = (prefix) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;

async function refusal(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof sdk.ResponseError, `expected a ResponseError, got ${error}`);
    return { status: error.response.status, body: await error.response.json() };
  }
  assert.fail('the call should have been refused');
}

test('registries and proxies go through their whole life', async () => {
  const { registries, proxies } = apis();
  const key = unique('hub');
  const proxy = await proxies.createUpstreamProxy({
    createUpstreamProxyRequest: {
      key,
      packageType: sdk.PackageType.Docker,
      source: sdk.DockerSource.DockerHub,
      auth: { type: sdk.AuthType.UsernamePassword, username: 'ci', password: 's3cret' },
    },
  });
  assert.equal(proxy.auth.passwordSet, true);
  assert.equal(proxy._public, false);
  const madePublic = await proxies.updateUpstreamProxy({ key, updateUpstreamProxyRequest: { _public: true } });
  assert.equal(madePublic._public, true);
  assert.equal(madePublic.version, 2);

  const name = unique('team');
  const created = await registries.createRegistry({
    createRegistryRequest: { name, packageType: sdk.PackageType.Docker, labels: ['prod'], upstreams: [key] },
  });
  assert.deepEqual(created.upstreams, [key]);

  const page = await registries.listRegistries({ label: 'prod', search: name });
  assert.deepEqual(page.items.map((r) => r.name), [name]);

  const changed = await registries.updateRegistry({
    name,
    ifMatch: `"${created.version}"`,
    updateRegistryRequest: { description: 'team images' },
  });
  assert.equal(changed.description, 'team images');

  const inUse = await refusal(proxies.deleteUpstreamProxy({ key }));
  assert.equal(inUse.status, 409);
  assert.equal(inUse.body.code, 'IN_USE');

  await registries.updateRegistry({ name, updateRegistryRequest: { upstreams: [] } });
  await proxies.deleteUpstreamProxy({ key });
  await registries.deleteRegistry({ name });
  const gone = await refusal(registries.getRegistry({ name }));
  assert.equal(gone.status, 404);
});

test('a duplicate name is a conflict with the server\'s message', async () => {
  const { registries } = apis();
  const name = unique('dup');
  await registries.createRegistry({ createRegistryRequest: { name, packageType: sdk.PackageType.Helm } });
  const conflict = await refusal(
    registries.createRegistry({ createRegistryRequest: { name, packageType: sdk.PackageType.Helm } }),
  );
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body.message, `registry ${name} already exists`);
});

test('a stale If-Match is refused with 412', async () => {
  const { registries } = apis();
  const name = unique('stale');
  await registries.createRegistry({ createRegistryRequest: { name, packageType: sdk.PackageType.Docker } });
  await registries.updateRegistry({ name, updateRegistryRequest: { labels: ['a'] } });
  const stale = await refusal(
    registries.updateRegistry({ name, ifMatch: '"1"', updateRegistryRequest: { labels: ['b'] } }),
  );
  assert.equal(stale.status, 412);
  assert.equal(stale.body.code, 'PRECONDITION_FAILED');
});

test('history and as_of read the past', async () => {
  const { registries, audit } = apis();
  const name = unique('past');
  await registries.createRegistry({
    createRegistryRequest: { name, packageType: sdk.PackageType.Docker, labels: ['v1'] },
  });
  await new Promise((r) => setTimeout(r, 50));
  const between = new Date();
  await new Promise((r) => setTimeout(r, 50));
  await registries.updateRegistry({ name, updateRegistryRequest: { labels: ['v2'] } });
  const then = await registries.getRegistry({ name, asOf: between });
  assert.deepEqual(then.labels, ['v1']);
  const first = await audit.getRegistryHistory({ name, limit: 1 });
  assert.deepEqual(first.items.map((i) => i.event.type), ['RegistryCreated']);
  const rest = await audit.getRegistryHistory({ name, pageToken: first.nextPageToken });
  assert.deepEqual(rest.items.map((i) => i.event.type), ['RegistryLabelled']);
});

test('a bad token is unauthorized', async () => {
  const { registries } = apis('not-a-token');
  const refused = await refusal(registries.listRegistries({}));
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, 'UNAUTHORIZED');
});
