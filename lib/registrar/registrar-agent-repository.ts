import type { Knex } from 'knex';
import { RegistrationConflict } from './registrar-errors.js';

/** One registered agent as stored in `registrar_agents` (migration `*-create-registrar-agents`). */
export interface StoredAgent {
  readonly agentId: string;
  /** base64 TPM2B_PUBLIC of the EK. */
  readonly ekTpm: string;
  /** base64 DER of the EK certificate, or null when the agent sent none. */
  readonly ekCert: string | null;
  /** base64 TPM2B_PUBLIC of the AK. */
  readonly aikTpm: string;
  /** base64 of the activation credential; the HMAC key of `auth_tag`. */
  readonly activationKey: string;
  readonly active: boolean;
  readonly ip: string | null;
  readonly port: number | null;
  readonly mtlsCert: string | null;
  readonly regcount: number;
}

interface AgentRow {
  agent_id: string;
  ek_tpm: string;
  ekcert: string | null;
  aik_tpm: string;
  activation_key: string;
  active: boolean;
  ip: string | null;
  port: number | null;
  mtls_cert: string | null;
  regcount: number;
}

const TABLE = 'registrar_agents';
const COLUMNS = [
  'agent_id',
  'ek_tpm',
  'ekcert',
  'aik_tpm',
  'activation_key',
  'active',
  'ip',
  'port',
  'mtls_cert',
  'regcount',
] as const;

/** PostgreSQL SQLSTATE unique_violation (Appendix A of the PostgreSQL manual). */
const UNIQUE_VIOLATION = '23505';

/** What an activation attempt did to the record. */
export type ActivationOutcome = 'activated' | 'deleted' | 'not-found';

/**
 * Persistence of registrar agents. Every change runs in one transaction that first locks the agent's
 * row (`SELECT … FOR UPDATE`), so concurrent requests for one agent are serialised and a decision is
 * always taken on the row as committed. Two first registrations of the same new id race on the
 * primary key; the loser gets `RegistrationConflict` (403), as Keylime answers on its unique
 * constraint. A callback that throws rolls the transaction back: nothing stored changes.
 */
export class RegistrarAgentRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Locks `agentId`, hands the current record (or undefined) to `decide`, and stores what it returns.
   * `decide` may throw to refuse the registration; the row is then left untouched.
   */
  async register(
    agentId: string,
    decide: (current: StoredAgent | undefined) => Omit<StoredAgent, 'agentId'>,
  ): Promise<StoredAgent> {
    try {
      return await this.knex.transaction(async (trx) => {
        const current = await this.lockRow(trx, agentId);
        const next: StoredAgent = { ...decide(current), agentId };
        if (current === undefined) {
          await trx(TABLE).insert(toRow(next));
        } else {
          await trx(TABLE)
            .where({ agent_id: agentId })
            .update({ ...toRow(next), updated_at: trx.fn.now() });
        }
        return next;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new RegistrationConflict(`agent ${agentId} is being registered concurrently; retry`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Locks `agentId` and lets `accept` judge the stored record: true marks it active, false deletes it
   * (Keylime deletes an agent whose activation proof is wrong). Both outcomes are committed.
   */
  async activate(agentId: string, accept: (current: StoredAgent) => boolean): Promise<ActivationOutcome> {
    return this.knex.transaction(async (trx) => {
      const current = await this.lockRow(trx, agentId);
      if (current === undefined) {
        return 'not-found';
      }
      if (!accept(current)) {
        await trx(TABLE).where({ agent_id: agentId }).delete();
        return 'deleted';
      }
      await trx(TABLE).where({ agent_id: agentId }).update({ active: true, updated_at: trx.fn.now() });
      return 'activated';
    });
  }

  async find(agentId: string): Promise<StoredAgent | undefined> {
    const row: AgentRow | undefined = await this.knex(TABLE).select([...COLUMNS]).where({ agent_id: agentId }).first();
    return row === undefined ? undefined : fromRow(row);
  }

  /** Ids of every stored agent, active or not (Keylime's `all_ids`), in a stable order. */
  async listIds(): Promise<string[]> {
    const rows = await this.knex<AgentRow>(TABLE).select('agent_id').orderBy('agent_id');
    return rows.map((row) => row.agent_id);
  }

  /** Deletes the record; false when there was none. */
  async delete(agentId: string): Promise<boolean> {
    // `returning` rather than the affected-row count, which knex-pglite does not report.
    const deleted: unknown[] = await this.knex(TABLE).where({ agent_id: agentId }).delete().returning('agent_id');
    return deleted.length > 0;
  }

  private async lockRow(trx: Knex.Transaction, agentId: string): Promise<StoredAgent | undefined> {
    const row: AgentRow | undefined = await trx(TABLE)
      .select([...COLUMNS])
      .where({ agent_id: agentId })
      .forUpdate()
      .first();
    return row === undefined ? undefined : fromRow(row);
  }
}

function toRow(agent: StoredAgent): AgentRow {
  return {
    agent_id: agent.agentId,
    ek_tpm: agent.ekTpm,
    ekcert: agent.ekCert,
    aik_tpm: agent.aikTpm,
    activation_key: agent.activationKey,
    active: agent.active,
    ip: agent.ip,
    port: agent.port,
    mtls_cert: agent.mtlsCert,
    regcount: agent.regcount,
  };
}

function fromRow(row: AgentRow): StoredAgent {
  return {
    agentId: row.agent_id,
    ekTpm: row.ek_tpm,
    ekCert: row.ekcert,
    aikTpm: row.aik_tpm,
    activationKey: row.activation_key,
    active: Boolean(row.active),
    ip: row.ip,
    port: row.port === null ? null : Number(row.port),
    mtlsCert: row.mtls_cert,
    regcount: Number(row.regcount),
  };
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION;
}
