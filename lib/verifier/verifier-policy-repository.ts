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

/** A stored policy as shown, with the ids of the agents enrolled with it (`agentsUsing`). */
export type InUse<T> = T & { readonly agentsUsing: readonly string[] };

/** A stored policy as read, with its row's version (`rowVersion`) read in the same statement. */
export type Versioned<T> = T & { readonly version: string };

/** Names of runtime policies and of refstates (`versionsOf`). */
export interface PolicyNames {
  readonly runtime: readonly string[];
  readonly mb: readonly string[];
}

/** The stored versions (`rowVersion`) by name; a name not stored is absent. */
export interface StoredPolicyVersions {
  readonly runtime: ReadonlyMap<string, string>;
  readonly mb: ReadonlyMap<string, string>;
}

/**
 * The tenant whose policies a caller may see: a bearer token's tenant, or undefined for every
 * tenant's (a client certificate, or the verifier itself loading an agent's policy).
 */
export type PolicyScope = string | undefined;

const RUNTIME = 'verifier_runtime_policies';
const MB = 'verifier_mb_policies';
const AGENTS = 'verifier_agents';
/** Most agent ids a stored policy's `agents_using` lists. */
export const AGENTS_USING_SHOWN = 100;
const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

type Db = Knex | Knex.Transaction;

/**
 * The two named policy stores (spec §4.4–4.5). Agents reference a stored policy by name (foreign
 * key), so a policy in use cannot be deleted, and several agents share one stored (and, in the
 * verifier's cache, one compiled) policy. Each policy belongs to a tenant; names are unique across
 * tenants. A `PolicyScope` narrows a read, change or delete to one tenant's: another tenant's policy
 * is then answered exactly as one that does not exist.
 */
export class VerifierPolicyRepository {
  constructor(private readonly knex: Knex) {}

  /** Stores `policy` as `tenant`'s. @throws VerifierConflict when the name is taken (by any tenant). */
  async insertRuntime(policy: StoredRuntimePolicy, tenant: string, db: Db = this.knex): Promise<void> {
    await conflictOnDuplicate(`Runtime policy with name ${policy.name} already exists`, () =>
      db(RUNTIME).insert({
        name: policy.name,
        tenant,
        runtime_policy: policy.runtimePolicy,
        checksum: policy.checksum,
        generator: policy.generator,
        tpm_policy: policy.tpmPolicy,
      }),
    );
  }

  /** Replaces a stored policy; false when there is none under that name in `scope`. */
  async updateRuntime(policy: StoredRuntimePolicy, scope?: PolicyScope): Promise<boolean> {
    const count = await inScope(this.knex(RUNTIME), scope)
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

  async findRuntime(name: string, scope?: PolicyScope): Promise<Versioned<StoredRuntimePolicy> | undefined> {
    const row = await findVersioned(this.knex, RUNTIME, name, scope);
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
    return rowVersion(this.knex, RUNTIME, name);
  }

  async listRuntimeNames(scope?: PolicyScope): Promise<string[]> {
    return listNames(this.knex, RUNTIME, scope);
  }

  /** False when absent from `scope`. @throws VerifierConflict when an agent still uses it. */
  async deleteRuntime(name: string, scope?: PolicyScope): Promise<boolean> {
    return conflictWhenInUse(`Runtime policy ${name} is used by an enrolled agent`, async () =>
      (await inScope(this.knex(RUNTIME), scope).where({ name }).delete().returning('name')).length > 0,
    );
  }

  /**
   * Whether `tenant` owns the runtime policy `name`; if so, the row is locked (`FOR KEY SHARE`) until
   * `trx` ends, so it can be neither deleted nor replaced by another tenant's of the same name before
   * the agent enrolled with it is stored.
   */
  async holdRuntime(name: string, tenant: string, trx: Knex.Transaction): Promise<boolean> {
    return holdOwned(trx, RUNTIME, name, tenant);
  }

  /** Stores `policy` as `tenant`'s. @throws VerifierConflict when the name is taken (by any tenant). */
  async insertMb(policy: StoredMbPolicy, tenant: string, db: Db = this.knex): Promise<void> {
    await conflictOnDuplicate(`Measured boot policy with name ${policy.name} already exists`, () =>
      db(MB).insert({ name: policy.name, tenant, mb_policy: policy.mbPolicy }),
    );
  }

  async updateMb(policy: StoredMbPolicy, scope?: PolicyScope): Promise<boolean> {
    const count = await inScope(this.knex(MB), scope)
      .update({ mb_policy: policy.mbPolicy, updated_at: this.knex.fn.now() })
      .where({ name: policy.name });
    return count > 0;
  }

  async findMb(name: string, scope?: PolicyScope): Promise<Versioned<StoredMbPolicy> | undefined> {
    const row = await findVersioned(this.knex, MB, name, scope);
    return row === undefined ? undefined : { name: String(row['name']), mbPolicy: String(row['mb_policy']), version: String(row['version']) };
  }

  /** `rowVersion` of the refstate stored under `name`. */
  async mbVersion(name: string): Promise<string | undefined> {
    return rowVersion(this.knex, MB, name);
  }

  /** The versions of the runtime policies and refstates stored under `names`, in one statement. */
  async versionsOf(names: PolicyNames): Promise<StoredPolicyVersions> {
    const named = (table: string, store: string, list: readonly string[]): Knex.QueryBuilder =>
      this.knex(table)
        .select(this.knex.raw(`'${store}' as store`), 'name', this.knex.raw('xmin::text as version'))
        .whereRaw('name in (select jsonb_array_elements_text(?::jsonb))', [JSON.stringify(list)]);
    const rows = (await this.knex.from(this.knex.raw('(? union all ?) as v', [named(RUNTIME, 'runtime', names.runtime), named(MB, 'mb', names.mb)]))) as {
      store: string;
      name: string;
      version: string;
    }[];
    const versions = { runtime: new Map<string, string>(), mb: new Map<string, string>() };
    for (const row of rows) {
      (row.store === 'runtime' ? versions.runtime : versions.mb).set(row.name, row.version);
    }
    return versions;
  }

  async listMbNames(scope?: PolicyScope): Promise<string[]> {
    return listNames(this.knex, MB, scope);
  }

  /** False when absent from `scope`. @throws VerifierConflict when an agent still uses it. */
  async deleteMb(name: string, scope?: PolicyScope): Promise<boolean> {
    return conflictWhenInUse(`Measured boot policy ${name} is used by an enrolled agent`, async () =>
      (await inScope(this.knex(MB), scope).where({ name }).delete().returning('name')).length > 0,
    );
  }

  /**
   * Ids of the agents enrolled with the runtime (`runtime`) or measured-boot (`mb`) policy stored
   * under `name`, sorted, at most `AGENTS_USING_SHOWN`. Only the policy's own tenant's agents can use it (`holdOwned`).
   */
  async agentsUsing(kind: 'runtime' | 'mb', name: string): Promise<string[]> {
    const column = kind === 'runtime' ? 'runtime_policy_name' : 'mb_policy_name';
    const rows = (await this.knex(AGENTS).select('agent_id').where(column, name).orderBy('agent_id').limit(AGENTS_USING_SHOWN)) as { agent_id: string }[];
    return rows.map((row) => row.agent_id);
  }

  /** `holdRuntime` for a measured-boot policy. */
  async holdMb(name: string, tenant: string, trx: Knex.Transaction): Promise<boolean> {
    return holdOwned(trx, MB, name, tenant);
  }
}

/** `query` narrowed to the policies of `scope`'s tenant (every tenant's when undefined). */
function inScope<Q extends Knex.QueryBuilder>(query: Q, scope: PolicyScope): Q {
  return scope === undefined ? query : (query.where({ tenant: scope }) as Q);
}

async function listNames(db: Db, table: string, scope: PolicyScope): Promise<string[]> {
  return ((await inScope(db(table).select('name').orderBy('name'), scope)) as { name: string }[]).map((r) => r.name);
}

async function holdOwned(trx: Knex.Transaction, table: string, name: string, tenant: string): Promise<boolean> {
  return (await trx(table).select('name').where({ name, tenant }).forKeyShare().first()) !== undefined;
}

/**
 * The version of the row stored under `name` (its `xmin`, the transaction that wrote it: another one
 * after any update, or after a delete and a new insert), undefined when there is none. A cheap check
 * that a text read before is still the one stored, for the processes that keep a copy (the push side).
 */
/** The row stored under `name` in `scope` with its `version` column (`rowVersion`), in one statement. */
async function findVersioned(db: Db, table: string, name: string, scope: PolicyScope): Promise<Record<string, unknown> | undefined> {
  return (await inScope(db(table).select('*', db.raw('xmin::text as version')).where({ name }), scope).first()) as Record<string, unknown> | undefined;
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
