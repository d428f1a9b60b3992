import type { Knex } from 'knex';
import { VerifierConflict } from './verifier-errors.js';

/** A stored runtime (IMA) policy (Keylime `allowlists` row). */
export interface StoredRuntimePolicy {
  readonly name: string;
  /** The policy JSON text (the inner policy of a signed one). */
  readonly runtimePolicy: string;
  /** sha256 hex of `runtimePolicy`. */
  readonly checksum: string;
  readonly generator: number;
  readonly tpmPolicy: string | null;
}

/** A stored measured-boot refstate (Keylime `mbpolicies` row). */
export interface StoredMbPolicy {
  readonly name: string;
  readonly mbPolicy: string;
}

/** A stored policy as read, with its row's version (`rowVersion`) read in the same statement. */
export type Versioned<T> = T & { readonly version: string };

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

type Db = Knex | Knex.Transaction;

/**
 * The two named policy stores (spec §4.4–4.5). Agents reference a stored policy by name (foreign
 * key), so a policy in use cannot be deleted, and several agents share one stored (and, in the
 * verifier's cache, one compiled) policy.
 */
export class VerifierPolicyRepository {
  constructor(private readonly knex: Knex) {}

  /** @throws VerifierConflict when the name is taken. */
  async insertRuntime(policy: StoredRuntimePolicy, db: Db = this.knex): Promise<void> {
    await conflictOnDuplicate(`Runtime policy with name ${policy.name} already exists`, () =>
      db('verifier_runtime_policies').insert({
        name: policy.name,
        runtime_policy: policy.runtimePolicy,
        checksum: policy.checksum,
        generator: policy.generator,
        tpm_policy: policy.tpmPolicy,
      }),
    );
  }

  /** Replaces a stored policy; false when there is none under that name. */
  async updateRuntime(policy: StoredRuntimePolicy): Promise<boolean> {
    const count = await this.knex('verifier_runtime_policies')
      .update({
        runtime_policy: policy.runtimePolicy,
        checksum: policy.checksum,
        generator: policy.generator,
        tpm_policy: policy.tpmPolicy,
        updated_at: this.knex.fn.now(),
      })
      .where({ name: policy.name });
    return count > 0;
  }

  async findRuntime(name: string, db: Db = this.knex): Promise<Versioned<StoredRuntimePolicy> | undefined> {
    const row = await findVersioned(db, 'verifier_runtime_policies', name);
    return row === undefined
      ? undefined
      : {
          name: String(row['name']),
          runtimePolicy: String(row['runtime_policy']),
          checksum: String(row['checksum']),
          generator: Number(row['generator']),
          tpmPolicy: row['tpm_policy'] === null ? null : String(row['tpm_policy']),
          version: String(row['version']),
        };
  }

  /** `rowVersion` of the runtime policy stored under `name`. */
  async runtimeVersion(name: string): Promise<string | undefined> {
    return rowVersion(this.knex, 'verifier_runtime_policies', name);
  }

  async listRuntimeNames(): Promise<string[]> {
    return ((await this.knex('verifier_runtime_policies').select('name').orderBy('name')) as { name: string }[]).map((r) => r.name);
  }

  /** False when absent. @throws VerifierConflict when an agent still uses it. */
  async deleteRuntime(name: string): Promise<boolean> {
    return conflictWhenInUse(`Runtime policy ${name} is used by an enrolled agent`, async () =>
      (await this.knex('verifier_runtime_policies').where({ name }).delete().returning('name')).length > 0,
    );
  }

  /** @throws VerifierConflict when the name is taken. */
  async insertMb(policy: StoredMbPolicy, db: Db = this.knex): Promise<void> {
    await conflictOnDuplicate(`Measured boot policy with name ${policy.name} already exists`, () =>
      db('verifier_mb_policies').insert({ name: policy.name, mb_policy: policy.mbPolicy }),
    );
  }

  async updateMb(policy: StoredMbPolicy): Promise<boolean> {
    const count = await this.knex('verifier_mb_policies')
      .update({ mb_policy: policy.mbPolicy, updated_at: this.knex.fn.now() })
      .where({ name: policy.name });
    return count > 0;
  }

  async findMb(name: string, db: Db = this.knex): Promise<Versioned<StoredMbPolicy> | undefined> {
    const row = await findVersioned(db, 'verifier_mb_policies', name);
    return row === undefined ? undefined : { name: String(row['name']), mbPolicy: String(row['mb_policy']), version: String(row['version']) };
  }

  /** `rowVersion` of the refstate stored under `name`. */
  async mbVersion(name: string): Promise<string | undefined> {
    return rowVersion(this.knex, 'verifier_mb_policies', name);
  }

  async listMbNames(): Promise<string[]> {
    return ((await this.knex('verifier_mb_policies').select('name').orderBy('name')) as { name: string }[]).map((r) => r.name);
  }

  /** False when absent. @throws VerifierConflict when an agent still uses it. */
  async deleteMb(name: string): Promise<boolean> {
    return conflictWhenInUse(`Measured boot policy ${name} is used by an enrolled agent`, async () =>
      (await this.knex('verifier_mb_policies').where({ name }).delete().returning('name')).length > 0,
    );
  }
}

/**
 * The version of the row stored under `name` (its `xmin`, the transaction that wrote it: another one
 * after any update, or after a delete and a new insert), undefined when there is none. A cheap check
 * that a text read before is still the one stored, for the processes that keep a copy (the push side).
 */
/** The row stored under `name` with its `version` column (`rowVersion`), in one statement. */
async function findVersioned(db: Db, table: string, name: string): Promise<Record<string, unknown> | undefined> {
  return (await db(table).select('*', db.raw('xmin::text as version')).where({ name }).first()) as Record<string, unknown> | undefined;
}

async function rowVersion(db: Db, table: string, name: string): Promise<string | undefined> {
  const row = (await db(table).select(db.raw('xmin::text as version')).where({ name }).first()) as { version: string } | undefined;
  return row?.version;
}

async function conflictOnDuplicate(message: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (hasCode(error, UNIQUE_VIOLATION)) {
      throw new VerifierConflict(message, { cause: error });
    }
    throw error;
  }
}

async function conflictWhenInUse(message: string, run: () => Promise<boolean>): Promise<boolean> {
  try {
    return await run();
  } catch (error) {
    if (hasCode(error, FOREIGN_KEY_VIOLATION)) {
      throw new VerifierConflict(message, { cause: error });
    }
    throw error;
  }
}

function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
