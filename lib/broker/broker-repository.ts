import type { Knex } from 'knex';
import type { BrokerNodeRecord } from './broker-node.js';
import type { ResourcePath } from './kbs-wire.js';
import type { ResourcePolicy } from './resource-policy.js';

/** A stored resource: the sealed secret and who may read it. */
export interface StoredResource {
  readonly path: ResourcePath;
  readonly sealed: string;
  readonly policy: ResourcePolicy;
}

/** See `BrokerRepository.accessFacts`. */
export interface AccessFacts {
  readonly resource: StoredResource | undefined;
  readonly revokedAt: number | undefined;
  readonly groups: readonly string[];
}

/** An RCAR session between `/auth` and its expiry. */
export interface BrokerSession {
  readonly id: string;
  readonly nonce: string;
  readonly tee: string;
  /** Unix milliseconds. */
  readonly expiresAt: number;
  /** Set once `/attest` passed. */
  readonly attested: { readonly agentId: string; readonly teePubkey: string; readonly at: number } | null;
}

interface AccessFactsRow {
  sealed: string | null;
  policy: string | null;
  revoked_at: string | number | null;
  groups: string | null;
}

const ACCESS_FACTS_SQL = `select r.sealed, r.policy,
  (select revoked_at from broker_revocations where agent_id = ?) as revoked_at,
  (select groups from broker_nodes where agent_id = ?) as groups
  from (select 1) as one
  left join broker_resources r on r.repository = ? and r.type = ? and r.tag = ?`;

interface NodeRow {
  agent_id: string;
  ak_tpm: string | null;
  tpm_policy: string;
  runtime_policy: string | null;
  mb_refstate: string | null;
  groups: string;
}

interface SessionRow {
  id: string;
  nonce: string;
  tee: string;
  expires_at: string | number;
  agent_id: string | null;
  tee_pubkey: string | null;
  attested_at: string | number | null;
}

/**
 * The broker's rows (migration `create-broker-tables`). Every method is one statement; errors from the
 * database propagate, so a caller fails closed (a failed read is never "no revocation").
 */
export class BrokerRepository {
  constructor(private readonly knex: Knex) {}

  async putNode(node: BrokerNodeRecord): Promise<void> {
    const row = {
      agent_id: node.agentId,
      ak_tpm: node.akTpm,
      tpm_policy: node.tpmPolicy,
      runtime_policy: node.runtimePolicy,
      mb_refstate: node.mbRefstate,
      groups: JSON.stringify(node.groups),
      updated_at: Date.now(),
    };
    await this.knex('broker_nodes').insert(row).onConflict('agent_id').merge();
  }

  async findNode(agentId: string): Promise<BrokerNodeRecord | undefined> {
    const row = (await this.knex('broker_nodes').where({ agent_id: agentId }).first()) as NodeRow | undefined;
    if (row === undefined) {
      return undefined;
    }
    return {
      agentId: row.agent_id,
      akTpm: row.ak_tpm,
      tpmPolicy: row.tpm_policy,
      runtimePolicy: row.runtime_policy,
      mbRefstate: row.mb_refstate,
      groups: JSON.parse(row.groups) as string[],
    };
  }

  async deleteNode(agentId: string): Promise<boolean> {
    return (await this.knex('broker_nodes').where({ agent_id: agentId }).delete()) > 0;
  }

  async putResource(resource: StoredResource): Promise<void> {
    await this.knex('broker_resources')
      .insert({ ...resource.path, sealed: resource.sealed, policy: JSON.stringify(resource.policy), updated_at: Date.now() })
      .onConflict(['repository', 'type', 'tag'])
      .merge();
  }

  async findResource(path: ResourcePath): Promise<StoredResource | undefined> {
    const row = (await this.knex('broker_resources').where({ ...path }).first()) as { sealed: string; policy: string } | undefined;
    return row === undefined ? undefined : { path, sealed: row.sealed, policy: JSON.parse(row.policy) as ResourcePolicy };
  }

  async deleteResource(path: ResourcePath): Promise<boolean> {
    return (await this.knex('broker_resources').where({ ...path }).delete()) > 0;
  }

  async insertSession(session: { id: string; nonce: string; tee: string; expiresAt: number }): Promise<void> {
    await this.knex('broker_sessions').insert({ id: session.id, nonce: session.nonce, tee: session.tee, expires_at: session.expiresAt });
  }

  async findSession(id: string): Promise<BrokerSession | undefined> {
    const row = (await this.knex('broker_sessions').where({ id }).first()) as SessionRow | undefined;
    if (row === undefined) {
      return undefined;
    }
    const attested =
      row.agent_id === null || row.tee_pubkey === null || row.attested_at === null
        ? null
        : { agentId: row.agent_id, teePubkey: row.tee_pubkey, at: Number(row.attested_at) };
    return { id: row.id, nonce: row.nonce, tee: row.tee, expiresAt: Number(row.expires_at), attested };
  }

  /**
   * Marks a session attested, only if it was not yet (a second /attest on one nonce is refused: the
   * nonce is single-use). Resolves false when another request got there first or the session is gone.
   */
  async markAttested(id: string, agentId: string, teePubkey: string, at: number): Promise<boolean> {
    const updated = await this.knex('broker_sessions')
      .where({ id })
      .whereNull('attested_at')
      .update({ agent_id: agentId, tee_pubkey: teePubkey, attested_at: at });
    return updated > 0;
  }

  /** Burns a session whose attestation failed: its nonce cannot be tried again. */
  async deleteSession(id: string): Promise<void> {
    await this.knex('broker_sessions').where({ id }).delete();
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    return this.knex('broker_sessions').where('expires_at', '<', now).delete();
  }

  async deleteSessionsOf(agentId: string): Promise<number> {
    return this.knex('broker_sessions').where({ agent_id: agentId }).delete();
  }

  async revoke(agentId: string, at: number, reason: string): Promise<void> {
    await this.knex('broker_revocations').insert({ agent_id: agentId, revoked_at: at, reason }).onConflict('agent_id').merge();
  }

  /** Unix seconds of the node's revocation, or undefined when it is not revoked. */
  async revokedAt(agentId: string): Promise<number | undefined> {
    const row = (await this.knex('broker_revocations').where({ agent_id: agentId }).first('revoked_at')) as
      | { revoked_at: string | number }
      | undefined;
    return row === undefined ? undefined : Number(row.revoked_at);
  }

  /**
   * Everything a resource request needs in one round trip: the resource, the node's revocation time
   * and the node's groups (a token-fetch hot path).
   */
  async accessFacts(path: ResourcePath, agentId: string): Promise<AccessFacts> {
    // One fixed statement (no query building per request): this is the token-fetch hot path.
    const result = (await this.knex.raw(ACCESS_FACTS_SQL, [agentId, agentId, path.repository, path.type, path.tag])) as
      | { rows: AccessFactsRow[] }
      | AccessFactsRow[];
    const row = (Array.isArray(result) ? result[0] : result.rows[0]) as AccessFactsRow;
    return {
      resource:
        row.sealed === null || row.policy === null
          ? undefined
          : { path, sealed: row.sealed, policy: JSON.parse(row.policy) as ResourcePolicy },
      revokedAt: row.revoked_at === null ? undefined : Number(row.revoked_at),
      groups: row.groups === null ? [] : (JSON.parse(row.groups) as string[]),
    };
  }

  async reinstate(agentId: string): Promise<boolean> {
    return (await this.knex('broker_revocations').where({ agent_id: agentId }).delete()) > 0;
  }
}
