import { expect } from 'chai';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';
import { useTokenVerifier } from './helpers/token-verifier.js';

/** A runtime policy that lets every file pass, in a marked variant: what another tenant would put in. */
function runtimePolicy(mark: string): { runtime_policy: string } {
  const policy = { meta: { version: 1, generator: 3 }, release: 0, digests: { [`/${mark}`]: ['a'.repeat(64)] }, excludes: ['.*'], keyrings: {}, ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null }, 'ima-buf': {}, 'verification-keys': '' };
  return { runtime_policy: Buffer.from(JSON.stringify(policy), 'utf8').toString('base64') };
}

function mbPolicy(mark: string): { mb_policy: string } {
  return { mb_policy: JSON.stringify({ ...JSON.parse(MINIMAL_REFSTATE), mark }) };
}

/** The two named policy stores: route, table, text column, and a body marked with `mark`. */
const STORES = [
  { route: 'allowlists', table: 'verifier_runtime_policies', column: 'runtime_policy', body: runtimePolicy },
  { route: 'mbpolicies', table: 'verifier_mb_policies', column: 'mb_policy', body: mbPolicy },
] as const;

/**
 * The policy routes narrow a change to the caller's tenant in the change's own statement (`UPDATE` or
 * `DELETE … WHERE name = ? AND tenant = ?`), not on the request's headers: a request whose body was held
 * while another tenant created the name changes nothing of that tenant's (404 as an unknown policy),
 * and a create of a name another tenant took meanwhile is 409 `… already exists`, as names are unique
 * across tenants, and says nothing of the policy.
 */
describe("named policy changes check the policy's tenant in the change itself, not only at the headers", function () {
  this.timeout(60_000);
  const v = useTokenVerifier();
  let operatorA: string;
  let operatorB: string;
  let adminB: string;

  before(async function () {
    operatorA = await v.token('operator', 'tenant-a');
    operatorB = await v.token('operator', 'tenant-b');
    adminB = await v.token('admin', 'tenant-b');
  });

  for (const store of STORES) {
    /** The stored policy's tenant and whether its text is the one marked `of-a`. */
    async function stored(name: string): Promise<{ tenant: string; ofA: boolean } | undefined> {
      const row = (await v.knex(store.table).select('tenant', store.column).where({ name }).first()) as Record<string, string> | undefined;
      return row === undefined ? undefined : { tenant: String(row['tenant']), ofA: String(row[store.column]).includes('"of-a"') || String(row[store.column]).includes('/of-a') };
    }

    it(`does not let tenant B's PUT /${store.route}/{name} replace tenant A's policy created while B's body was held`, async function () {
      const name = `${store.route}-put-over`;
      const held = await v.heldCall('PUT', `/v2.3/${store.route}/${name}`, operatorB, store.body('of-b'));
      expect((await v.call('POST', `/v2.3/${store.route}/${name}`, operatorA, store.body('of-a'))).status).to.equal(201);
      const b = await held.send();
      expect(b.status, b.body).to.equal(404);
      expect(await stored(name)).to.deep.equal({ tenant: 'tenant-a', ofA: true });
    });

    it(`does not let tenant B's PUT /${store.route}/{name} replace the policy tenant A took over from B while B's body was held`, async function () {
      const name = `${store.route}-taken-over`;
      expect((await v.call('POST', `/v2.3/${store.route}/${name}`, operatorB, store.body('first-of-b'))).status).to.equal(201);
      const held = await v.heldCall('PUT', `/v2.3/${store.route}/${name}`, operatorB, store.body('of-b'));
      expect((await v.call('DELETE', `/v2.3/${store.route}/${name}`, adminB)).status).to.equal(204);
      expect((await v.call('POST', `/v2.3/${store.route}/${name}`, operatorA, store.body('of-a'))).status).to.equal(201);
      const b = await held.send();
      expect(b.status, b.body).to.equal(404);
      expect(await stored(name)).to.deep.equal({ tenant: 'tenant-a', ofA: true });
    });

    it(`does not let tenant B's DELETE /${store.route}/{name} delete tenant A's policy created while B's request was held`, async function () {
      const name = `${store.route}-kept`;
      const held = await v.heldCall('DELETE', `/v2.3/${store.route}/${name}`, adminB, {});
      expect((await v.call('POST', `/v2.3/${store.route}/${name}`, operatorA, store.body('of-a'))).status).to.equal(201);
      const b = await held.send();
      expect(b.status, b.body).to.equal(404);
      expect(await stored(name)).to.deep.equal({ tenant: 'tenant-a', ofA: true });
    });

    it(`answers tenant B's POST /${store.route}/{name} of a name tenant A took while B's body was held 409, naming nothing of A's policy`, async function () {
      const name = `${store.route}-raced`;
      const held = await v.heldCall('POST', `/v2.3/${store.route}/${name}`, operatorB, store.body('of-b'));
      expect((await v.call('POST', `/v2.3/${store.route}/${name}`, operatorA, store.body('of-a'))).status).to.equal(201);
      const b = await held.send();
      expect(b.status, b.body).to.equal(409);
      expect(b.body).to.include('already exists').and.not.include('tenant-a').and.not.include('of-a');
      expect(await stored(name)).to.deep.equal({ tenant: 'tenant-a', ofA: true });
    });
  }
});
