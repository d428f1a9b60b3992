import { expect } from 'chai';
import { IronlimeMigrationSource, migrateLatest, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { KEPT_ATTESTATIONS } from '../../lib/verifier/push/push-statements.js';
import { forEachDatabase } from '../helpers/databases.js';

const PRUNE_MIGRATION = '20261205130000-verifier-push-attestations-prune';

/** Phase 1 now deletes only the attestation falling out (index n - 100): the rows stored before any pruning are deleted once, by a migration. */
forEachDatabase('push attestations pruning migration', (fixture) => {
  it(`deletes each agent's push attestations past its newest ${KEPT_ATTESTATIONS}, and keeps those of an agent with fewer`, async function () {
    const { knex } = fixture.database;
    const index = MIGRATIONS.findIndex((migration) => migration.name === PRUNE_MIGRATION);
    expect(index, 'the migration is registered').to.be.greaterThan(0);
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, index)), tableName: MIGRATIONS_TABLE });
    await knex.raw(
      `insert into verifier_push_attestations (agent_id, index, stage, challenge, choice, system_info, capabilities_received_at, challenges_expire_at)
       select a, g, 'verification_complete', 'c', '{}', '{}', now(), now()
       from (values ('many', 0, 249), ('exactly', 5, 104), ('few', 0, 9)) as v(a, low, high), generate_series(v.low, v.high) g`,
    );
    await migrateLatest(knex);
    const rows = (await knex.raw(
      'select agent_id, count(*)::int as kept, min(index) as oldest, max(index) as newest from verifier_push_attestations group by agent_id order by agent_id',
    )).rows as unknown[];
    expect(rows).to.deep.equal([
      { agent_id: 'exactly', kept: 100, oldest: 5, newest: 104 },
      { agent_id: 'few', kept: 10, oldest: 0, newest: 9 },
      { agent_id: 'many', kept: KEPT_ATTESTATIONS, oldest: 250 - KEPT_ATTESTATIONS, newest: 249 },
    ]);
  });
});
