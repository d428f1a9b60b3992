import type { Knex } from 'knex';
import { CLAIMABLE_STATES } from './agent-leases.js';
import { judgedDeadSql, lockHeldSql } from './process-lock-sql.js';

const PROCESSES = 'verifier_processes';

/** Some pull agent of the dead process `p` still needs a new owner (index `verifier_agents_owner_idx`). */
const OWNS_CLAIMABLE_AGENTS = `exists (select 1 from verifier_agents a
  where a.owner = p.owner and a.verifier_id = p.verifier_id and a.attestation_mode = 'pull'
    and a.operational_state in (${CLAIMABLE_STATES.join(', ')}))`;

/**
 * One process's beat (bindings: owner, verifier id, lock key), stamped with the server instance it is
 * written on (`deadByLockSql`).
 */
const BEAT = `insert into ${PROCESSES} (owner, verifier_id, heartbeat_at, lock_key, lock_instance)
  values (?, ?, now(), ?::int, pg_postmaster_start_time())
  on conflict (owner) do update set verifier_id = excluded.verifier_id, heartbeat_at = excluded.heartbeat_at,
    lock_key = excluded.lock_key, lock_instance = excluded.lock_instance`;

/**
 * The dead-process watch's statement (`beatAndWatch`) for the judge's lock `judgeKey`. A dead process's
 * row stays while it owns agents to claim: every survivor's `claimFree` needs it to tell that owner
 * dead, not only the first one to look.
 */
function watchSql(judgeKey: number | null): string {
  const dead = judgedDeadSql('p', judgeKey);
  return `
with beat as (${BEAT}),
emptied as (
  delete from ${PROCESSES} p
  where p.verifier_id = ? and p.owner <> ? and ${dead} and not ${OWNS_CLAIMABLE_AGENTS}
)
select
  array(select p.owner from ${PROCESSES} p
        where p.verifier_id = ? and p.owner <> ? and ${dead} and ${OWNS_CLAIMABLE_AGENTS}
        order by p.owner) as dead,
  (?::int is null or ${lockHeldSql('?::int')}) as own_lock_held`;
}

/** How many processes of one verifier id are alive, and how many agents they split. */
export interface VerifierPopulation {
  readonly liveProcesses: number;
  readonly claimableAgents: number;
}

/** What the dead-process watch sees (`beatAndWatch`). */
export interface ProcessWatch {
  /** Other processes of the verifier id that died and still own agents to claim, sorted. */
  readonly deadOwners: readonly string[];
  /** Whether the lock of the key asked about is held (true when no key was given). */
  readonly ownLockHeld: boolean;
}

/** Who beats and looks (`beatAndWatch`). */
export interface WatchingProcess {
  readonly verifierId: string;
  readonly owner: string;
  /** The key of the lock the process holds as far as it knows (beaten; checked in `ownLockHeld`); null: none. */
  readonly lockKey: number | null;
  /** The key it judges others by (`judgedDeadSql`): null while it has none, or has held it only briefly. */
  readonly judgeKey: number | null;
}

/**
 * The heartbeat table of the verifier processes sharing one database (`verifier_processes`). A
 * process beats on every lease sweep (and, with a process lock, on every dead-process watch tick);
 * one whose beat is older than a lease counts as gone, exactly like its agent leases. On PostgreSQL
 * each process also records the key of the advisory lock its session holds (`ProcessLock`) and the
 * server instance it beat on: a process dead by its lock (`deadByLockSql`) is gone at once for the
 * processes that hold their own lock, however young its lease.
 */
export class VerifierProcessRepository {
  constructor(private readonly knex: Knex) {}

  /** Records that `owner` (a process of `verifierId`) is alive now, holding the process lock `lockKey` (null: none). */
  async beat(owner: string, verifierId: string, lockKey: number | null): Promise<void> {
    await this.knex.raw(BEAT, [owner, verifierId, lockKey]);
  }

  /**
   * The live processes of `verifierId` (a beat within `leaseSeconds`, and not judged dead by its lock
   * by the holder of `judgeKey`, null: nobody is) and its claimable agents, in one statement.
   */
  async population(verifierId: string, leaseSeconds: number, judgeKey: number | null = null): Promise<VerifierPopulation> {
    const result = (await this.knex.raw(
      `select
         (select count(*) from ${PROCESSES} p
          where p.verifier_id = ? and p.heartbeat_at > now() - make_interval(secs => ?) and not ${judgedDeadSql('p', judgeKey)}) as live,
         (select count(*) from verifier_agents where verifier_id = ? and operational_state in (${CLAIMABLE_STATES.join(', ')})) as agents`,
      [verifierId, leaseSeconds, verifierId],
    )) as { rows: { live: string | number; agents: string | number }[] };
    const row = result.rows[0];
    return { liveProcesses: Number(row?.live ?? 0), claimableAgents: Number(row?.agents ?? 0) };
  }

  /**
   * One cheap statement (no work per agent): beats for `process`, and lists the other processes of
   * its verifier id that it judges dead by their lock while they still own agents to claim, and says
   * whether the lock of its `lockKey` is held (to notice a lock session that ended without its socket
   * saying so). Rows of dead processes that own nothing to claim any more are deleted on the way.
   */
  async beatAndWatch(process: WatchingProcess): Promise<ProcessWatch> {
    const { verifierId, owner, lockKey, judgeKey } = process;
    const result = (await this.knex.raw(watchSql(judgeKey), [owner, verifierId, lockKey, verifierId, owner, verifierId, owner, lockKey, lockKey])) as {
      rows: { dead: string[]; own_lock_held: boolean }[];
    };
    const row = result.rows[0];
    return { deadOwners: row?.dead ?? [], ownLockHeld: row?.own_lock_held ?? false };
  }

  /** Removes `owner`'s beat (clean shutdown): the others count one process fewer at their next sweep. */
  async remove(owner: string): Promise<void> {
    await this.knex(PROCESSES).where({ owner }).delete();
  }
}
