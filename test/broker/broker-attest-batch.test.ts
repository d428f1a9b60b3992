import { expect } from 'chai';
import type { Knex } from 'knex';
import { loadAuditKey } from '../../lib/audit/audit-signing-key.js';
import { BROKER_AUDIT_TABLES } from '../../lib/audit/audit-tables.js';
import type { AuditRecord } from '../../lib/audit/audit-record.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { RevocationStore } from '../../lib/broker/revocation-store.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { exportCollected, exportText } from '../audit/helpers/sealed-export.js';
import { forEachDatabase } from '../helpers/databases.js';
import { brokerReportData, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { expectRefused, openSession, runtimeDataOf } from './helpers/kbs-refusals.js';

/** The agent ids the one software TPM is stored under: each is a node with a stream of its own. */
const NODES = ['batch-blocker', 'batch-a', 'batch-b', 'batch-c'] as const;

/** A pause for requests to reach the claims queue (its state is not observable): generous, not a timing assertion. */
const QUEUED_MS = 1_500;

/**
 * `/attest` claims by group commit (docs/broker.md): a claim that arrives while a claims transaction
 * waits for a node's stream (held here by a test transaction, as a revocation's record holds it) joins
 * the next batch, decided claim by claim; the claim reads the node's revocation once its stream is
 * locked. Software TPM, real quotes, PostgreSQL (a second connection holds the stream).
 */
forEachDatabase('broker: /attest claims by group commit', (fixture) => {
  let broker: TestBroker;
  let http: KbsHttp;
  let node: TestNode;
  let knex: Knex;

  /** An attest request for `agentId` in a fresh session, its quote made now: sending it is `send`. */
  const prepared = async (agentId: string): Promise<{ cookie: string; send: () => Promise<unknown> }> => {
    const session = await openSession(http);
    const runtimeData = runtimeDataOf(session.nonce, await TeeKeyPair.generate('ec'));
    const evidence = await new TpmEvidenceProvider({ tpm: node.tpm, agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath }).primaryEvidence(
      brokerReportData(runtimeData),
    );
    const body = { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } };
    return { cookie: session.cookie, send: () => http.send('POST', '/kbs/v0/attest', { body, headers: { cookie: session.cookie } }) };
  };
  const tokenOf = async (reply: Promise<unknown>): Promise<string> => ((await reply) as { body: { token: string } }).body.token;
  const records = async (agentId: string): Promise<{ records: readonly AuditRecord[]; text: string }> => {
    const exported = await exportCollected(knex, loadAuditKey(broker.dataDir), { stream: agentId }, undefined, BROKER_AUDIT_TABLES);
    return { records: exported.records, text: exportText(exported) };
  };
  const attestRecords = async (agentId: string): Promise<AuditRecord[]> => (await records(agentId)).records.filter((record) => record.action === 'node.attest');
  const attestedRows = async (agentId: string): Promise<number> =>
    Number((await knex('broker_sessions').where({ agent_id: agentId }).count({ n: '*' }))[0]?.n);

  /**
   * Runs `during` in a transaction that holds `stream`'s head (as a record being appended holds it;
   * `locking` runs first in it), after `first` (a request whose claim then waits for it) is blocked on
   * it; commits at the end. Resolves to `first`'s reply (wrapped: a promise resolved with a promise waits for it).
   */
  const holdingStream = async (
    stream: string,
    first: () => Promise<unknown>,
    during: (trx: Knex.Transaction) => Promise<void>,
    locking: (trx: Knex.Transaction) => Promise<void> = async () => undefined,
  ): Promise<{ reply: Promise<unknown> }> => {
    const trx = await knex.transaction();
    try {
      await locking(trx);
      await trx.raw('select seq from broker_audit_heads where stream = ? for update', [stream]);
      const holder = ((await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid ?? -1;
      const blocked = first();
      blocked.catch(() => undefined); // awaited by the caller, after the commit
      for (let waited = 0; ; waited += 1) {
        const waiting = (await knex.raw('select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [holder])) as { rows: { n: number }[] };
        if (waiting.rows[0]?.n === 1) break;
        expect(waited, 'the first claim reached the held stream').to.be.below(1_000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await during(trx);
      await trx.commit();
      return { reply: blocked };
    } catch (error) {
      await trx.rollback();
      throw error;
    }
  };

  before(async function () {
    if (fixture.kind !== 'postgres') this.skip(); // PGlite has one connection: no second transaction can hold a stream.
    this.timeout(60_000);
    knex = fixture.database.knex;
    broker = await startTestBroker({}, fixture.database);
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    node = await softwareTestNode();
    for (const agentId of NODES) {
      await broker.admin.putNode(agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate(), groups: [] });
    }
  });

  afterEach(async function () {
    if (knex !== undefined) await knex('broker_revocations').whereIn('agent_id', [...NODES]).delete();
  });

  after(async function () {
    await node?.dispose();
    await broker?.dispose();
  });

  it('claims queued behind a busy transaction share one batch: a revoked node\'s claim is refused, the others get tokens and one signed batch of records', async function () {
    this.timeout(30_000);
    const [blocker, a, b, c] = await Promise.all(NODES.map((agentId) => prepared(agentId)));
    const before = { a: await attestRecords('batch-a'), b: await attestRecords('batch-b'), bRows: await attestedRows('batch-b') };
    const replies: Promise<unknown>[] = [];
    const { reply: blocked } = await holdingStream('batch-blocker', blocker!.send, async () => {
      for (const request of [a, b, c]) {
        const reply = request!.send();
        reply.catch(() => undefined);
        replies.push(reply);
      }
      await new Promise((resolve) => setTimeout(resolve, QUEUED_MS));
      // Revoked while its claim waits in the queue: its claim reads the revocation, the others are not held back.
      await new RevocationStore(knex).revoke('batch-b', Math.floor(Date.now() / 1000), 'revoked while queued');
    });
    expect(await tokenOf(blocked)).to.be.a('string');
    const [aReply, bReply, cReply] = replies as [Promise<unknown>, Promise<unknown>, Promise<unknown>];
    const [aToken, cToken] = [await tokenOf(aReply), await tokenOf(cReply)];
    expect(await expectRefused(bReply, 401, 'AttestationError')).to.contain('revoked');
    expect([aToken, cToken].every((token) => typeof token === 'string')).to.equal(true);
    expect(await attestRecords('batch-b')).to.have.length(before.b.length);
    expect(await attestedRows('batch-b')).to.equal(before.bRows);
    const [aRecord, cRecord] = [(await attestRecords('batch-a')).at(-1), (await attestRecords('batch-c')).at(-1)] as [AuditRecord, AuditRecord];
    expect(aRecord.seq, 'a new record of batch-a').to.be.above(before.a.at(-1)?.seq ?? 0);
    expect(aRecord.batchPath.length > 0 && aRecord.signature === cRecord.signature, 'a and c signed as one batch').to.equal(true);
    for (const agentId of ['batch-a', 'batch-c']) {
      expect(verifyAuditExport((await records(agentId)).text, loadAuditKey(broker.dataDir).publicKey).valid, agentId).to.equal(true);
    }
  });

  it('a batch whose records cannot be stored refuses every claim of it: 500, no token, no attested session', async function () {
    this.timeout(30_000);
    const [blocker, a, c] = await Promise.all(['batch-blocker', 'batch-a', 'batch-c'].map((agentId) => prepared(agentId)));
    const rowsBefore = [await attestedRows('batch-a'), await attestedRows('batch-c')];
    const replies: Promise<unknown>[] = [];
    try {
      const { reply: blocked } = await holdingStream('batch-blocker', blocker!.send, async (trx) => {
        for (const request of [a, c]) {
          const reply = request!.send();
          reply.catch(() => undefined);
          replies.push(reply);
        }
        await new Promise((resolve) => setTimeout(resolve, QUEUED_MS));
        await trx.raw('alter table broker_audit_records rename to broker_audit_records_away');
      });
      await expectRefused(blocked, 500, 'InternalError', 'the blocked claim');
      for (const reply of replies) await expectRefused(reply, 500, 'InternalError', 'a queued claim');
    } finally {
      await knex.raw('alter table if exists broker_audit_records_away rename to broker_audit_records');
    }
    expect([await attestedRows('batch-a'), await attestedRows('batch-c')]).to.deep.equal(rowsBefore);
    // Their sessions are burnt: the same cookie attests no more; a new session does.
    expect(await expectRefused(a!.send(), 401, 'AttestationError')).to.equal('this session has already attested');
    expect(await tokenOf((await prepared('batch-a')).send())).to.be.a('string');
  });

  it('of claims on one session queued together, exactly one gets a token', async function () {
    this.timeout(30_000);
    const [blocker, a] = await Promise.all(['batch-blocker', 'batch-a'].map((agentId) => prepared(agentId)));
    const replies: Promise<unknown>[] = [];
    const { reply: blocked } = await holdingStream('batch-blocker', blocker!.send, async () => {
      for (let i = 0; i < 4; i += 1) {
        const reply = a!.send();
        reply.catch(() => undefined);
        replies.push(reply);
      }
      await new Promise((resolve) => setTimeout(resolve, QUEUED_MS));
    });
    await blocked;
    const outcomes = await Promise.allSettled(replies);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).to.have.length(1);
    for (const reply of replies.filter((_, i) => outcomes[i]?.status === 'rejected')) {
      expect(await expectRefused(reply, 401, 'AttestationError')).to.equal('this session has already attested');
    }
  });

  it('a claim waiting for its node\'s stream while a revocation holds it is refused once the revocation commits, and not recorded', async function () {
    this.timeout(30_000);
    const a = await prepared('batch-a');
    const before = await attestRecords('batch-a');
    const rowsBefore = await attestedRows('batch-a');
    // A revocation as the broker writes one: the row, then its record's lock on the node's stream, committed once the claim waits.
    const { reply: claim } = await holdingStream(
      'batch-a',
      a.send,
      async () => undefined,
      (trx) => new RevocationStore(trx).revoke('batch-a', Math.floor(Date.now() / 1000), 'revoked while a claim waited'),
    );
    expect(await expectRefused(claim, 401, 'AttestationError')).to.contain('revoked');
    expect(await attestRecords('batch-a')).to.have.length(before.length);
    expect(await attestedRows('batch-a')).to.equal(rowsBefore);
  });
});
