import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { seesEveryTenant } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { startLivenessNode, type LivenessNode } from './helpers/liveness-node.js';
import { eventually } from './helpers/verifier-fixture.js';
import { createVerifierProcessFleet, type VerifierProcessFleet } from './helpers/verifier-process-fleet.js';

const INSTANCE = 'liveness-killed';

/**
 * An impostor's wrong host-secret proof seen while the database refuses the verdict, then the verifier
 * process SIGKILLed (as the OOM killer would): it never closes. The failure was kept in its data folder
 * only by `close`, so it was lost, and the restarted verifier asked the node again, the real host
 * answered rightly, and the node came back alive. It is now written when the store fails.
 */
describe('verifier process: a liveness failure the database refused survives a SIGKILL', function () {
  this.timeout(240_000);
  const agentId = 'impostor-before-sigkill';
  const proofKey = Buffer.alloc(32, 7);
  let fleet: VerifierProcessFleet;
  let node: LivenessNode;

  before(async function () {
    // The first answer is an impostor's (without the secret); the real host answers every later one.
    node = await startLivenessNode(agentId, () => (node.requests === 1 ? Buffer.alloc(32, 9) : proofKey));
    fleet = await createVerifierProcessFleet('ironlime-liveness-sigkill-');
    const repository = new LivenessRepository(fleet.knex);
    await repository.enrol({ agentId, tenant: 'default', verifierId: 'default', mode: 'id-secret', trustLevel: 'id-secret', ip: '127.0.0.1', port: node.port, mtlsCert: node.tls.certPem, proofKey: proofKey.toString('hex') }, noAuditRecord, seesEveryTenant);
    // A real refusal by the database, counted outside the refused transaction (a sequence is not rolled back).
    await fleet.knex.raw('CREATE SEQUENCE liveness_refusals');
    await fleet.knex.raw(`CREATE FUNCTION refuse_liveness() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM nextval('liveness_refusals'); RAISE EXCEPTION 'liveness verdicts refused (test)'; END $$`);
    await fleet.knex.raw('CREATE TRIGGER refuse_liveness BEFORE UPDATE ON verifier_liveness FOR EACH ROW EXECUTE FUNCTION refuse_liveness()');
  });

  after(async function () {
    await fleet?.close();
    await node?.close();
  });

  const refusals = async (): Promise<number> => {
    const { rows } = (await fleet.knex.raw('SELECT last_value, is_called FROM liveness_refusals')) as { rows: { last_value: string; is_called: boolean }[] };
    return rows[0]?.is_called === true ? Number(rows[0].last_value) : 0;
  };
  const status = async (): Promise<{ status: string; last_failure: string | null }> =>
    (await fleet.knex('verifier_liveness').select('status', 'last_failure').where({ agent_id: agentId }).first()) as { status: string; last_failure: string | null };

  it('is kept in the data folder when the store fails, and stored by the next process before the node is asked again', async function () {
    const dataDir = fleet.dataDirOf(INSTANCE);
    // The process's own list: `liveness-unstored-failures.<tag>.json`.
    const keptLists = (): string[] => readdirSync(dataDir).filter((name) => name.startsWith('liveness-unstored-failures')).map((name) => path.join(dataDir, name));
    const first = fleet.start(INSTANCE, ['--quote-interval', '1', '--request-timeout', '10'], 'silent');
    await eventually('the database refused the impostor\'s failure', async () => {
      if (first.exitCode !== null) throw new Error(`the verifier exited (${String(first.exitCode)})`);
      return (await refusals()) >= 1;
    }, 120_000, 200);
    expect(node.requests, 'only the impostor was asked').to.equal(1);
    await eventually('the refused failure kept in the data folder', () => Promise.resolve(keptLists().length === 1), 20_000, 100);
    const [kept = ''] = keptLists();
    expect(statSync(kept).mode & 0o777, 'owner only').to.equal(0o600);
    const enrolled = (await fleet.knex('verifier_liveness').select('enrolment').where({ agent_id: agentId }).first()) as { enrolment: string };
    const [failure] = JSON.parse(readFileSync(kept, 'utf8')) as { agentId: string; enrolment: string; reason: string }[];
    expect(failure).to.include({ agentId, enrolment: enrolled.enrolment });
    expect(failure?.reason).to.include('host-secret proof does not match');
    first.kill('SIGKILL');
    await once(first, 'exit');
    await fleet.knex.raw('DROP TRIGGER refuse_liveness ON verifier_liveness');
    expect((await status()).status, 'the refusal kept the failure out of the database').to.equal('pending');

    fleet.start(INSTANCE, ['--quote-interval', '1', '--request-timeout', '10'], 'silent');
    await eventually('the next process stored the kept failure', async () => (await status()).status === 'failed', 120_000, 200);
    expect((await status()).last_failure).to.include('host-secret proof does not match');
    expect(node.requests, 'the node was not asked again: its good answer cannot hide the failure').to.equal(1);
    await eventually('the kept list removed once stored', () => Promise.resolve(keptLists().length === 0), 20_000, 100);
  });
});
