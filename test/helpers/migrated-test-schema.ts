import type { Knex } from 'knex';
import { openMigratedTestSchema, type OpenedDatabase } from './databases.js';

/** A fresh test schema on PostgreSQL with every migration applied, open for one `describe`. */
export interface MigratedTestSchema {
  readonly knex: Knex;
}

/**
 * Registers `before`/`after` hooks in the calling `describe` that open and migrate the schema and drop
 * it; read `knex` only from hooks and tests declared after this call (it throws before the schema is open).
 */
export function useMigratedTestSchema(): MigratedTestSchema {
  let opened: OpenedDatabase | undefined;
  before(async function () {
    opened = await openMigratedTestSchema();
  });
  after(async function () {
    await opened?.dispose();
    opened = undefined;
  });
  return {
    get knex() {
      if (opened === undefined) throw new Error('the migrated test schema is open only between its before and after hooks');
      return opened.database.knex;
    },
  };
}
