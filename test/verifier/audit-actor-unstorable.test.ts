import { expect } from 'chai';
import { issueApiToken, MAX_TOKEN_TTL_SECONDS } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { auditRecordHash } from '../../lib/audit/audit-record.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { readNodeTimeline } from '../../lib/dashboard/node-timeline.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';
import { useTokenVerifier } from './helpers/token-verifier.js';

interface AuditRow {
  readonly stream: string;
  readonly seq: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly agent_id: string | null;
  readonly details: string;
  readonly prev_hash: string;
  readonly hash: string;
}

/**
 * An admin change's audit record names its actor: a token's subject (or a certificate's), chosen by
 * whoever issued the credential. PostgreSQL stores no NUL in `text` and no lone surrogate in `jsonb`:
 * such an actor is stored escaped (`\u0000`), as every other stored text, and the change is made;
 * so is the revoker a token revocation names. Before, both failed (500). A refused request's path
 * parameter is escaped too: `details` is read as `jsonb` by the dashboard.
 */
describe("an audit record's actor holding a NUL or a lone surrogate", function () {
  this.timeout(60_000);
  const v = useTokenVerifier();

  for (const [what, subject, stored] of [
    ['a NUL', 'op\u0000erator', 'op\\u0000erator'],
    ['a lone surrogate', 'op\ud800erator', 'op\\ud800erator'],
  ] as const) {
    it(`records a change by a token whose subject holds ${what}, escaped, and makes the change`, async function () {
      const token = await issueApiToken({ subject, role: 'operator', tenant: 'tenant-a', ttlSeconds: MAX_TOKEN_TTL_SECONDS }, loadOrCreateTokenKey(v.dataDir).privateKey);
      const name = `actor-${what.replaceAll(' ', '-')}`;
      const reply = await v.call('POST', `/v2.3/mbpolicies/${name}`, token, { mb_policy: MINIMAL_REFSTATE });
      expect(reply.status, reply.body).to.equal(201);
      const rows = (await v.knex('audit_records').select('*').where('details', 'like', `%${name}%`)) as AuditRow[];
      expect(rows.map((row) => row.actor)).to.deep.equal([`token:${stored} (operator@tenant-a)`]);
      // The hash covers the record as stored (escaped): an export of it verifies.
      const row = rows[0] as AuditRow;
      const event = { stream: row.stream, at: row.at, actor: row.actor, action: row.action, agentId: row.agent_id, details: JSON.parse(row.details) as Record<string, unknown> };
      expect(auditRecordHash(event, Number(row.seq), row.prev_hash)).to.equal(row.hash);
    });

    it(`revokes a token by a token whose subject holds ${what}, the revoker named escaped`, async function () {
      const key = loadOrCreateTokenKey(v.dataDir).privateKey;
      const admin = await issueApiToken({ subject, role: 'admin', tenant: 'tenant-a', ttlSeconds: 600 }, key);
      const victim = await v.token('operator', 'tenant-a');
      const jti = JSON.parse(Buffer.from(victim.split('.')[1] as string, 'base64url').toString('utf8')).jti as string;
      const reply = await v.call('DELETE', `/v2.3/tokens/${jti}`, admin);
      expect(reply.status, reply.body).to.equal(204);
      const row = (await v.knex('api_token_revocations').select('revoked_by').where({ jti }).first()) as { revoked_by: string };
      expect(row.revoked_by).to.equal(`token:${stored} (admin@tenant-a)`);
      expect((await v.call('GET', '/v2.3/mbpolicies', victim)).status).to.equal(401);
    });
  }

  it("stores a refused request's path parameter holding a NUL escaped, so a node's timeline, which reads details as jsonb, still reads", async function () {
    const reply = await v.call('POST', '/v2.3/mbpolicies/a%00b', await v.token('operator', 'tenant-a'), { mb_policy: MINIMAL_REFSTATE });
    expect(reply.status, reply.body).to.equal(400);
    const rows = (await v.knex('audit_records').select('details').whereLike('details', '%"status":400%')) as { details: string }[];
    expect(rows.map((row) => (JSON.parse(row.details) as { params: unknown }).params)).to.deep.include({ name: 'a\\u0000b' });
    // The timeline of a node using a policy casts every fleet record's details to jsonb (\u0000 in JSON is refused).
    const node = { agentId: 'timeline-node', tenant: 'tenant-a', runtimePolicy: 'some-policy', mbPolicy: null, liveness: null } as unknown as NodeRow;
    expect(await readNodeTimeline(v.knex, node, undefined)).to.deep.equal([]);
  });

  it('reads a node\'s timeline past a record stored before such texts were escaped (a raw \\u0000 or lone surrogate escape in its details)', async function () {
    const old = { stream: 'fleet', at: '2026-12-01T00:00:00.000Z', actor: 'old (operator@tenant-a)', action: 'mbpolicy.add', agent_id: null, prev_hash: '0'.repeat(64), hash: 'f'.repeat(64), signature: '' };
    await v.knex('audit_records').insert([
      { ...old, seq: 9_000_001, details: '{"params":{"name":"a\\u0000b"},"tenant":"tenant-a"}' },
      { ...old, seq: 9_000_002, details: '{"params":{"name":"some-policy"},"tenant":"tenant-a\\ud800"}' },
      { ...old, seq: 9_000_003, details: '{"params":{"name":"some-policy"},"tenant":"tenant-a","note":"\\udc00"}' },
    ]);
    try {
      const node = { agentId: 'timeline-node-2', tenant: 'tenant-a', runtimePolicy: 'some-policy', mbPolicy: null, liveness: null } as unknown as NodeRow;
      const titles = (await readNodeTimeline(v.knex, node, 'tenant-a')).map((entry) => entry.title);
      // The third names the node's policy for its tenant; the others do not match once read.
      expect(titles).to.deep.equal(['mbpolicy.add by old (operator@tenant-a)']);
    } finally {
      await v.knex('audit_records').where({ stream: 'fleet' }).where('seq', '>', 9_000_000).delete();
    }
  });
});
