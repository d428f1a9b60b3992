import { expect } from 'chai';
import { marshalTpm2bPublic, type TpmtPublicFields } from '../../lib/tpm/tpmt-public.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { rocaModulus } from '../helpers/roca-modulus.js';
import { refusal, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

/** The broker takes a node's AK from its admin, not from a registrar: the same weak keys are refused there. */
describe('broker: a node whose RSA AK has the ROCA fingerprint', function () {
  const AGENT = '6f1d2c9e-3b7a-4e55-8a21-0c4d5e6f7a81';
  let db: OpenedDatabase;
  let broker: TestBroker;

  before(async function () {
    db = await openTestSchema();
    broker = await startTestBroker({}, db.database);
  });

  after(async function () {
    await broker?.dispose();
    await db?.dispose();
  });

  it('is refused (SerdeError naming the flaw) and not stored; the same node with its own AK is stored', async function () {
    const fake = new FakeAgent();
    const weak = Buffer.from(marshalTpm2bPublic({ ...fake.akPublic, unique: { n: rocaModulus() } } as TpmtPublicFields)).toString('base64');
    const refused = await refusal(broker.admin.putNode(AGENT, { akTpm: weak, groups: ['rack4'] }));
    expect(refused.kbsType).to.equal('SerdeError');
    expect(refused.message).to.match(/the AK is an RSA key made by a TPM with the ROCA flaw/);
    expect(await db.database.knex('broker_nodes').where({ agent_id: AGENT }).select('agent_id')).to.deep.equal([]);
    await broker.admin.putNode(AGENT, { akTpm: fake.akTpm, groups: ['rack4'] });
    expect(await db.database.knex('broker_nodes').where({ agent_id: AGENT }).select('agent_id')).to.have.length(1);
  });
});
