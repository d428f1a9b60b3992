import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { ekKeyHashOfStored } from '../../lib/registrar/ek-key-hash.js';
import { RegistrarAgentRepository } from '../../lib/registrar/registrar-agent-repository.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { DamagedAgentRecord } from '../../lib/registrar/registrar-errors.js';
import { forEachDatabase } from '../helpers/databases.js';
import { rejectionOf } from '../helpers/rejection.js';
import { createRegistrarTestEnvironment, refusal, startTestRegistrar } from './helpers/registrar-fixture.js';
import { generateTestKey } from './helpers/test-tpm-identity.js';

/** The CHECK of migration 20261204150000: a record with an EK carries its ek_key_hash. */
const CONSTRAINT = 'registrar_agents_ek_key_hash_with_ek';

/** A base64 TPM2B_PUBLIC that does not parse (three bytes), as a stricter parser finds in old rows. */
const UNPARSABLE_EK = 'AAEC';

/**
 * Stores a record with an EK and no ek_key_hash, as rows stored before the CHECK exist in the field: the
 * constraint is dropped around the insert and added back NOT VALID, as the migration adds it.
 */
async function insertLegacyRow(knex: Knex, agentId: string, ekTpm: string, active: boolean): Promise<void> {
  await knex.raw(`ALTER TABLE registrar_agents DROP CONSTRAINT ${CONSTRAINT}`);
  await knex('registrar_agents').insert({ agent_id: agentId, ek_tpm: ekTpm, ek_key_hash: null, aik_tpm: 'AwQF', activation_key: 'a2V5', active });
  await knex.raw(`ALTER TABLE registrar_agents ADD CONSTRAINT ${CONSTRAINT} CHECK ((ek_tpm IS NULL) = (ek_key_hash IS NULL)) NOT VALID`);
}

async function storedState(knex: Knex, agentId: string): Promise<Record<string, unknown> | undefined> {
  return (await knex('registrar_agents')
    .select('active', 'flagged_reason', 'mode_change_to', 'ek_key_hash', 'activation_key')
    .where({ agent_id: agentId })
    .first()) as Record<string, unknown> | undefined;
}

forEachDatabase(
  'registrar: a record stored with an EK but no ek_key_hash',
  (fixture) => {
    /** The database, a repository on it and the id of a fresh legacy record. */
    async function legacyRecord(ekTpm: string, active: boolean): Promise<{ knex: Knex; repo: RegistrarAgentRepository; id: string }> {
      const { knex } = fixture.database;
      const id = randomUUID();
      await insertLegacyRow(knex, id, ekTpm, active);
      return { knex, repo: new RegistrarAgentRepository(knex), id };
    }

    it('refuses to flag, allow a mode change to or activate one whose EK does not parse, and changes nothing', async function () {
      const { knex, repo, id } = await legacyRecord(UNPARSABLE_EK, false);
      const before = await storedState(knex, id);
      const flagged = await rejectionOf(repo.flag(id, 'another EK'), DamagedAgentRecord);
      expect(flagged.code).to.equal('ERR_CONFLICT');
      expect(flagged.message).to.equal(
        `the stored record of agent '${id}' cannot be changed: its stored EK does not parse; delete the agent and register it again`,
      );
      await rejectionOf(repo.allowModeChange(id, 'id-only'), DamagedAgentRecord);
      await rejectionOf(repo.activate(id, (current) => ({ ...current, active: true })), DamagedAgentRecord);
      expect(await storedState(knex, id)).to.deep.equal(before);
      expect(before).to.include({ active: false, flagged_reason: null });
    });

    it('still deletes one whose EK does not parse (the operator)', async function () {
      const { repo, id } = await legacyRecord(UNPARSABLE_EK, true);
      expect(await repo.delete(id)).to.equal(true);
    });

    it('flags one whose EK parses, filling in its ek_key_hash', async function () {
      const ekTpm = Buffer.from(generateTestKey('ecc', 'ek').tpm2bPublic).toString('base64');
      const { knex, repo, id } = await legacyRecord(ekTpm, true);
      await repo.flag(id, 'another EK');
      expect(await repo.allowModeChange(id, 'tpm')).to.equal(true);
      expect(await storedState(knex, id)).to.include({ flagged_reason: 'another EK', mode_change_to: 'tpm', ek_key_hash: ekKeyHashOfStored(ekTpm) });
    });
  },
  { migrate: true },
);

forEachDatabase(
  'registrar service: a registration refused against a record whose EK does not parse',
  (fixture) => {
    it('answers 409 naming the damaged record instead of a 500, and stores nothing', async function () {
      const env = await createRegistrarTestEnvironment();
      const registrar = await startTestRegistrar(env, fixture.database);
      const client = new RegistrarClient({ baseUrl: registrar.httpUrl });
      try {
        const { knex } = fixture.database;
        const id = randomUUID();
        await insertLegacyRow(knex, id, UNPARSABLE_EK, true);
        const before = await storedState(knex, id);
        const ek = generateTestKey('rsa', 'ek');
        const refused = await refusal(
          client.register(id, { ekPublic: ek.tpm2bPublic, ekCertificate: env.ekCa.issue(ek.publicKey), akPublic: generateTestKey('ecc', 'ak').tpm2bPublic }),
        );
        expect(refused.remoteHttpStatus).to.equal(409);
        expect(refused.status).to.include(`the stored record of agent '${id}' cannot be changed`);
        expect(await storedState(knex, id)).to.deep.equal(before);
      } finally {
        client.close();
        await registrar.close();
        env.dispose();
      }
    });
  },
  { migrate: true },
);
