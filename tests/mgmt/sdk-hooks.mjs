// Drives hookgate's Auth0-compatible hooks API with the real `auth0` Node SDK (ManagementClient),
// the way a team's own scripts do: every hooks and hook-secrets call, checking each answer.
// Run by tests/management_e2e.rs. Environment: HOOKGATE_DOMAIN (host:port of the API, https),
// HOOKGATE_TOKEN (a token with read/create/update/delete:hooks), NODE_EXTRA_CA_CERTS (hookgate's
// certificate). Prints one line per step; exits 1 with the failed step's reason.
import assert from 'node:assert/strict';
import { ManagementClient } from 'auth0';

const domain = process.env.HOOKGATE_DOMAIN;
const token = process.env.HOOKGATE_TOKEN;
if (!domain || !token) {
  console.error('set HOOKGATE_DOMAIN and HOOKGATE_TOKEN');
  process.exit(2);
}

// Retries off: a failure shows at once, as the test wants, and nothing waits on back-off.
const client = new ManagementClient({ domain, token, maxRetries: 0 });

const SCRIPT =
  'module.exports = function (client, scope, audience, context, cb) {\n' +
  "  cb(null, { 'https://example.com/sdk': context.webtask.secrets.SDK_KEY || null });\n" +
  '};\n';
const SCRIPT2 = SCRIPT.replace('https://example.com/sdk', 'https://example.com/sdk2');

/** The SDK's error for `call`, or a failure if it succeeded. */
async function rejects(what, call) {
  try {
    await call();
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: expected an error, the call succeeded`);
}

function step(name) {
  console.log(`ok ${name}`);
}

async function main() {
  // getAll: the SDK sends include_totals=true and reads the `hooks` envelope.
  const before = await client.hooks.list({ per_page: 100 });
  const namesBefore = before.data.map((h) => h.name);
  assert.ok(!namesBefore.includes('sdk-hook'), `sdk-hook already exists: ${namesBefore}`);
  step(`list (${before.data.length} hooks)`);

  // create: 201 with the hook, enabled as given.
  const created = await client.hooks.create({
    name: 'sdk-hook',
    script: SCRIPT,
    triggerId: 'credentials-exchange',
    enabled: true,
  });
  assert.match(created.id, /^[A-Za-z0-9-]+$/);
  assert.equal(created.name, 'sdk-hook');
  assert.equal(created.triggerId, 'credentials-exchange');
  assert.equal(created.enabled, true);
  const id = created.id;
  step(`create ${id}`);

  // A second hook of the same name is a 409 (ConflictError).
  const dup = await rejects('duplicate create', () =>
    client.hooks.create({ name: 'sdk-hook', script: SCRIPT, triggerId: 'credentials-exchange' }),
  );
  assert.equal(dup.statusCode, 409, String(dup));
  step('create duplicate name -> 409');

  // get: the script comes back as sent.
  const got = await client.hooks.get(id);
  assert.equal(got.id, id);
  assert.equal(got.script, SCRIPT);
  assert.equal(got.triggerId, 'credentials-exchange');
  step('get');

  // list filtered by trigger, and the new hook among them.
  const listed = await client.hooks.list({ triggerId: 'credentials-exchange', per_page: 100 });
  assert.ok(listed.data.some((h) => h.id === id), JSON.stringify(listed.data));
  assert.ok(listed.data.every((h) => h.triggerId === 'credentials-exchange'));
  step('list by triggerId');

  // update: 200 with the changed hook; the id stays.
  const updated = await client.hooks.update(id, { script: SCRIPT2, enabled: false });
  assert.equal(updated.id, id);
  assert.equal(updated.enabled, false);
  assert.equal((await client.hooks.get(id)).script, SCRIPT2);
  step('update');

  // update may not move a hook to another trigger: 400.
  const moved = await rejects('update with triggerId', () =>
    client.hooks.update(id, { triggerId: 'send-phone-message' }),
  );
  assert.equal(moved.statusCode, 400, String(moved));
  step('update triggerId -> 400');

  // secrets: none yet.
  assert.deepEqual(await client.hooks.secrets.get(id), {});
  step('getSecrets (none)');

  // addSecrets, then read back names only.
  await client.hooks.secrets.create(id, { SDK_KEY: 'k1', OTHER: 'o1' });
  assert.deepEqual(await client.hooks.secrets.get(id), {
    SDK_KEY: '_VALUE_NOT_SHOWN_',
    OTHER: '_VALUE_NOT_SHOWN_',
  });
  step('addSecrets');

  // Adding an existing name is a 409.
  const again = await rejects('addSecrets existing', () =>
    client.hooks.secrets.create(id, { SDK_KEY: 'k2' }),
  );
  assert.equal(again.statusCode, 409, String(again));
  step('addSecrets existing -> 409');

  // updateSecrets of an existing name; of a missing one fails.
  await client.hooks.secrets.update(id, { SDK_KEY: 'k3' });
  const missing = await rejects('updateSecrets missing', () =>
    client.hooks.secrets.update(id, { NOPE: 'x' }),
  );
  assert.ok([400, 404].includes(missing.statusCode), String(missing));
  step('updateSecrets');

  // deleteSecrets with an array of names.
  await client.hooks.secrets.delete(id, ['OTHER']);
  assert.deepEqual(await client.hooks.secrets.get(id), { SDK_KEY: '_VALUE_NOT_SHOWN_' });
  step('deleteSecrets');

  // delete: gone, and a get is a 404 (NotFoundError).
  await client.hooks.delete(id);
  const gone = await rejects('get deleted', () => client.hooks.get(id));
  assert.equal(gone.statusCode, 404, String(gone));
  const after = await client.hooks.list({ per_page: 100 });
  assert.ok(!after.data.some((h) => h.id === id));
  step('delete');

  console.log('all ok');
}

main().catch((e) => {
  console.error(`FAILED: ${e && e.stack ? e.stack : e}`);
  if (e && e.body) console.error(`body: ${JSON.stringify(e.body)}`);
  process.exit(1);
});
