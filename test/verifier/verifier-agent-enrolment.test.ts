import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { recordFromRow } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { forEachDatabase } from '../helpers/databases.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';

const AGENT = 'agent-enrolment-1';

/** `VerifierAgentRecord.enrolment` through the product's repository (docs/push.md "Eleventh pass"). */
forEachDatabase(
  'verifier agent enrolment',
  (fixture) => {
    let agents: VerifierAgentRepository;
    const enrolment = pullAgentEnrolment({ agentId: AGENT, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' });

    before(async function () {
      agents = new VerifierAgentRepository(fixture.database.knex);
      await agents.insert(enrolment, initialAgentState(), null, 30);
    });

    it('an agent deleted and enrolled again has a higher enrolment', async function () {
      const first = (await agents.find(AGENT))?.enrolment;
      expect(first).to.match(/^[0-9]+$/);
      expect(await agents.delete(AGENT)).to.equal(true);
      await agents.insert(enrolment, initialAgentState(), null, 30);
      const second = (await agents.find(AGENT))?.enrolment;
      expect(second).to.match(/^[0-9]+$/);
      expect(BigInt(second ?? '0') > BigInt(first ?? '0'), `${String(second)} after ${String(first)}`).to.equal(true);
    });

    it('a row read without its enrolment column is refused, not read as the enrolment "undefined"', async function () {
      const row = (await fixture.database.knex('verifier_agents').where({ agent_id: AGENT }).first()) as Record<string, unknown>;
      expect(recordFromRow(row).enrolment).to.match(/^[0-9]+$/);
      const { enrolment: _dropped, ...withoutEnrolment } = row;
      expect(() => recordFromRow(withoutEnrolment)).to.throw('verifier_agents row read without its enrolment column');
    });
  },
  { migrate: true },
);
