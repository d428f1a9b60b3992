import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { forEachDatabase } from '../helpers/databases.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const RESOURCE = { repository: 'node', type: 'disk-key', tag: 'at-rest' };

/** Every way a secret's bytes could show up in a text column. */
function encodingsOf(secret: Buffer): string[] {
  return [secret.toString('latin1'), secret.toString('hex'), secret.toString('base64'), secret.toString('base64url')];
}

/**
 * Secrets at rest: after an admin PUT, the broker's own `broker_resources` row is read straight from
 * the database, on PostgreSQL and on the embedded PGlite the zero-config broker uses.
 */
forEachDatabase('broker: resources are sealed at rest', (fixture) => {
  let broker: TestBroker;

  async function storedRow(): Promise<Record<string, unknown>> {
    const rows = (await fixture.database.knex('broker_resources').where(RESOURCE).select('*')) as Record<string, unknown>[];
    expect(rows, 'one row for the resource').to.have.length(1);
    return rows[0] as Record<string, unknown>;
  }

  before(async function () {
    broker = await startTestBroker({}, fixture.database);
  });

  after(async function () {
    await broker?.dispose();
  });

  it('the stored row holds none of the secret bytes, in clear or in any text encoding', async function () {
    const secret = Buffer.concat([Buffer.from('LUKS passphrase of rack4-u12: '), randomBytes(32)]);
    await broker.admin.putResource(RESOURCE, new Uint8Array(secret), { agents: ['node-at-rest'] });
    const row = await storedRow();
    const rowText = JSON.stringify(row);
    for (const encoded of [...encodingsOf(secret), ...encodingsOf(secret.subarray(secret.length - 32)), 'LUKS passphrase']) {
      expect(rowText.includes(encoded), `row contains ${encoded.slice(0, 24)}…`).to.equal(false);
    }
    const sealed = Buffer.from(String(row['sealed']), 'base64');
    expect(sealed.indexOf(secret.subarray(secret.length - 32)), 'secret bytes inside the decoded sealed value').to.equal(-1);
    // IV (12) ‖ ciphertext (as long as the secret) ‖ GCM tag (16).
    expect(sealed.length).to.equal(12 + secret.length + 16);
  });

  it('the same secret put again is sealed afresh (new IV): equal secrets do not show as equal rows', async function () {
    const secret = new Uint8Array(randomBytes(48));
    await broker.admin.putResource(RESOURCE, secret, { agents: ['node-at-rest'] });
    const first = String((await storedRow())['sealed']);
    await broker.admin.putResource(RESOURCE, secret, { agents: ['node-at-rest'] });
    const second = String((await storedRow())['sealed']);
    expect(second).to.not.equal(first);
    expect(Buffer.from(first, 'base64').subarray(0, 12)).to.not.deep.equal(Buffer.from(second, 'base64').subarray(0, 12));
  });
});
