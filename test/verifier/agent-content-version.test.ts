import { expect } from 'chai';
import type { Knex } from 'knex';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { createAgentContentVersionTrigger, UNVERSIONED_AGENT_COLUMNS } from '../../migrations/20261204180000-verifier-agent-content-version.js';
import { forEachDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';

/** The columns of `verifier_agents`, in table order. */
async function agentColumns(knex: Knex): Promise<string[]> {
  const rows = (await knex.raw(`select attname from pg_attribute where attrelid = 'verifier_agents'::regclass and attnum > 0 and not attisdropped order by attnum`)) as {
    rows: { attname: string }[];
  };
  return rows.rows.map((row) => row.attname);
}

/** The columns whose update fires the version trigger (its `UPDATE OF` list). */
async function triggerColumns(knex: Knex): Promise<string[]> {
  const rows = (await knex.raw(
    `select a.attname from pg_trigger t join pg_attribute a on a.attrelid = t.tgrelid and a.attnum = any(t.tgattr::int2[])
     where t.tgrelid = 'verifier_agents'::regclass and t.tgname = 'verifier_agent_content_version' order by a.attnum`,
  )) as { rows: { attname: string }[] };
  return rows.rows.map((row) => row.attname);
}

async function insertAgent(agents: VerifierAgentRepository, agentId: string): Promise<void> {
  const enrolment = pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: 'CERT', supportedVersion: '2.6' });
  await agents.insert(enrolment, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
}

/**
 * The agent row's version (`agentVersionSql`: `content_version`, bumped by a trigger) changes with an
 * update of ANY column but the lease's, whichever statement makes it, and never repeats, not even for
 * an agent deleted and enrolled again; a lease renewal or take-over leaves it. The trigger lists its
 * columns, so a column added to the table later without re-creating it would be missed: the coverage
 * check below catches that.
 */
forEachDatabase(
  'verifier agent row version (content_version trigger)',
  (fixture) => {
    let agents: VerifierAgentRepository;
    const knex = (): Knex => fixture.database.knex;

    before(function () {
      agents = new VerifierAgentRepository(knex());
    });

    it('fires on every column of verifier_agents but the lease columns', async function () {
      const columns = await agentColumns(knex());
      expect(await triggerColumns(knex())).to.deep.equal(columns.filter((name) => !UNVERSIONED_AGENT_COLUMNS.includes(name)));
      expect(columns).to.include.members(UNVERSIONED_AGENT_COLUMNS);
    });

    it('moves on an update of each versioned column (even to the same value), not on a lease-only update', async function () {
      const agentId = `content-version-${Math.random().toString(36).slice(2, 10)}`;
      await insertAgent(agents, agentId);
      const seen = new Set<string>([await agentRowVersion(knex(), agentId)]);
      const versioned = (await agentColumns(knex())).filter((name) => !UNVERSIONED_AGENT_COLUMNS.includes(name));
      expect(versioned).to.include.members(['operational_state', 'mtls_cert', 'updated_at']);
      for (const column of versioned) {
        await knex().raw('update verifier_agents set ?? = ?? where agent_id = ?', [column, column, agentId]);
        const version = await agentRowVersion(knex(), agentId);
        expect(seen.has(version), `an update of ${column} moves the version`).to.equal(false);
        seen.add(version);
      }
      const before = await agentRowVersion(knex(), agentId);
      await knex().raw(`update verifier_agents set owner = 'other', lease_expires_at = now() where agent_id = ?`, [agentId]);
      expect(await agents.leases.renewLeases('other', 30, [agentId])).to.equal(1);
      expect(await agentRowVersion(knex(), agentId)).to.equal(before);
    });

    it('gives an agent deleted and enrolled again a version its old row never had', async function () {
      const agentId = `content-version-${Math.random().toString(36).slice(2, 10)}`;
      await insertAgent(agents, agentId);
      const old = await agentRowVersion(knex(), agentId);
      await agents.delete(agentId);
      await insertAgent(agents, agentId);
      expect(await agentRowVersion(knex(), agentId)).to.not.equal(old);
    });

    it('a column added without re-creating the trigger is caught by the coverage check, and covered once re-created', async function () {
      await knex().raw('alter table verifier_agents add column content_version_probe text');
      try {
        expect(await triggerColumns(knex())).to.not.include('content_version_probe');
        await createAgentContentVersionTrigger(knex());
        expect(await triggerColumns(knex())).to.include('content_version_probe');
      } finally {
        // A column the trigger lists cannot be dropped while the trigger stands.
        await knex().raw('drop trigger verifier_agent_content_version on verifier_agents');
        await knex().raw('alter table verifier_agents drop column content_version_probe');
        await createAgentContentVersionTrigger(knex());
      }
    });
  },
  { migrate: true },
);
