import type { Knex } from 'knex';

const PROCESSES = 'verifier_processes';

/** Agents of one verifier id that need an owner (the same states `claimFree` takes). */
const CLAIMABLE_STATES = [1, 3, 4, 5, 6, 8];

/** How many processes of one verifier id are alive, and how many agents they split. */
export interface VerifierPopulation {
  readonly liveProcesses: number;
  readonly claimableAgents: number;
}

/**
 * The heartbeat table of the verifier processes sharing one database (`verifier_processes`). A
 * process beats on every lease sweep; one whose beat is older than a lease counts as gone, exactly
 * like its agent leases.
 */
export class VerifierProcessRepository {
  constructor(private readonly knex: Knex) {}

  /** Records that `owner` (a process of `verifierId`) is alive now. */
  async beat(owner: string, verifierId: string): Promise<void> {
    await this.knex.raw(
      `insert into ${PROCESSES} (owner, verifier_id, heartbeat_at) values (?, ?, now())
       on conflict (owner) do update set verifier_id = excluded.verifier_id, heartbeat_at = excluded.heartbeat_at`,
      [owner, verifierId],
    );
  }

  /** The live processes of `verifierId` (a beat within `leaseSeconds`) and its claimable agents, in one statement. */
  async population(verifierId: string, leaseSeconds: number): Promise<VerifierPopulation> {
    const result = (await this.knex.raw(
      `select
         (select count(*) from ${PROCESSES} where verifier_id = ? and heartbeat_at > now() - make_interval(secs => ?)) as live,
         (select count(*) from verifier_agents where verifier_id = ? and operational_state in (${CLAIMABLE_STATES.join(', ')})) as agents`,
      [verifierId, leaseSeconds, verifierId],
    )) as { rows: { live: string | number; agents: string | number }[] };
    const row = result.rows[0];
    return { liveProcesses: Number(row?.live ?? 0), claimableAgents: Number(row?.agents ?? 0) };
  }

  /** Removes `owner`'s beat (clean shutdown): the others count one process fewer at their next sweep. */
  async remove(owner: string): Promise<void> {
    await this.knex(PROCESSES).where({ owner }).delete();
  }
}
