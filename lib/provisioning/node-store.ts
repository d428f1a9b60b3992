// tsyringe and decorator metadata (class-validator) need the Reflect polyfill loaded first.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import type { Knex } from 'knex';
import { InvalidParameterValue, NodeAlreadyExists, NodeNotFound } from '../../interfaces/errors.js';
import type { AttestationStatus, DriverInfo, Node } from '../../interfaces/node.js';
import type { Database } from '../db/database-factory.js';
import { DATABASE } from '../db/database-token.js';
import { isTrustLevel, TRUST_LEVELS, type TrustLevel } from '../identity/trust-level.js';

/** Fields a new node may set; everything else takes the table's defaults. */
export interface NewNode {
  readonly uuid?: string;
  readonly name?: string | null;
  readonly provisionState?: string;
  readonly attestationInterface?: string | null;
  readonly driverInfo?: DriverInfo;
  readonly instanceInfo?: Readonly<Record<string, unknown>>;
}

/** Fields `updateNode` may change; absent fields are left alone. */
export type NodeChanges = Omit<NewNode, 'uuid'>;

/** An attestation outcome to record on a node. */
export interface AttestationRecord {
  readonly status: AttestationStatus;
  readonly reason: string | null;
  readonly eventIds: readonly string[];
  readonly at?: Date;
}

interface NodeRow {
  uuid: string;
  name: string | null;
  provision_state: string;
  attestation_interface: string | null;
  driver_info: Record<string, unknown>;
  instance_info: Record<string, unknown>;
  last_attestation_status: AttestationStatus | null;
  last_attestation_reason: string | null;
  last_attestation_event_ids: string[];
  last_attestation_at: Date | null;
  trust_level: string | null;
  accepted_trust_level: string | null;
  accepted_trust_level_note: string | null;
  accepted_trust_level_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads and writes the `nodes` table (migrations `20261123000000` and `20261123000100`). Every method
 * is one statement, so it is safe from any number of processes on one PostgreSQL.
 */
@injectable()
export class NodeStore {
  constructor(@inject(DATABASE) private readonly database: Database) {}

  private get knex(): Knex {
    return this.database.knex;
  }

  /**
   * Inserts a node; a uuid is generated when none is given.
   *
   * @throws NodeAlreadyExists when the uuid or the name is taken; InvalidParameterValue for a bad uuid,
   *   a name longer than the column, or a `driver_info.keylime_agent_uuid` another node names.
   */
  async createNode(input: NewNode): Promise<Node> {
    const uuid = input.uuid ?? randomUUID();
    checkUuid(uuid);
    const [row] = await writing({ uuid, name: input.name, agentId: agentIdIn(input.driverInfo) }, () =>
      this.knex<NodeRow>('nodes')
        .insert({ uuid, ...toColumns(input) })
        .returning('*'),
    );
    return fromRow(row as NodeRow);
  }

  /** @throws NodeNotFound when no node has this uuid. */
  async getNode(uuid: string): Promise<Node> {
    const node = await this.findNode(uuid);
    if (node === undefined) {
      throw new NodeNotFound(uuid);
    }
    return node;
  }

  /** The node, or `undefined` when no node has this uuid. */
  async findNode(uuid: string): Promise<Node | undefined> {
    if (!UUID.test(uuid)) {
      return undefined;
    }
    const row = await this.knex<NodeRow>('nodes').where({ uuid }).first();
    return row === undefined ? undefined : fromRow(row as NodeRow);
  }

  /** Every node, oldest first, optionally only those in one provision state. */
  async listNodes(filter: { readonly provisionState?: string } = {}): Promise<Node[]> {
    const query = this.knex<NodeRow>('nodes').orderBy([{ column: 'created_at' }, { column: 'uuid' }]);
    if (filter.provisionState !== undefined) {
      query.where({ provision_state: filter.provisionState });
    }
    const rows = (await query) as NodeRow[];
    return rows.map(fromRow);
  }

  /**
   * Uuids of the nodes whose `driver_info.keylime_agent_uuid` is `agentId`, oldest first: at most one
   * since migration `20261204160000` (a unique index), more only in a database not yet migrated.
   */
  async nodesNamingAgent(agentId: string): Promise<string[]> {
    const rows = (await this.knex<NodeRow>('nodes')
      .whereRaw("driver_info->>'keylime_agent_uuid' = ?", [agentId])
      .orderBy([{ column: 'created_at' }, { column: 'uuid' }])
      .select('uuid')) as Pick<NodeRow, 'uuid'>[];
    return rows.map((row) => row.uuid);
  }

  /**
   * A `driver_info` naming another agent than the stored one (or none) withdraws an operator's
   * acceptance of a lower trust level (`acceptTrustLevel`): it was given for the machine behind that
   * agent, not for whichever answers next; it clears the trust level stored for the node too (the
   * next gate reads the new agent's). One given while no agent was named holds for the first.
   * For the same reason such a `driver_info` may not keep the stored `keylime_minimum_trust_level`
   * unchanged (as a merge of the stored fields would): it is refused, and the minimum is set again
   * once the new agent is named, if its machine should have it.
   *
   * @throws NodeNotFound when no node has this uuid; NodeAlreadyExists for a taken name;
   *   InvalidParameterValue for a `driver_info.keylime_agent_uuid` another node names, or for a
   *   `driver_info.keylime_minimum_trust_level` carried over to another agent (or none).
   */
  async updateNode(uuid: string, changes: NodeChanges): Promise<Node> {
    const agentId = agentIdIn(changes.driverInfo);
    const columns = toColumns(changes);
    if (changes.driverInfo === undefined) {
      return this.#update(uuid, columns, agentId);
    }
    // In the same statement, judged on the stored row: no other write can slip between the check and the change.
    const anotherAgent = this.knex.raw("driver_info->>'keylime_agent_uuid' is not null and driver_info->>'keylime_agent_uuid' is distinct from ?::text", [
      agentId ?? null,
    ]);
    for (const column of AGENT_BOUND_COLUMNS) columns[column] = this.knex.raw('case when ? then null else ?? end', [anotherAgent, column]);
    const minimum = jsonTextIn(changes.driverInfo, MINIMUM_TRUST_LEVEL_FIELD);
    const carriesMinimum = this.knex.raw(`? and nullif(driver_info->>'${MINIMUM_TRUST_LEVEL_FIELD}', '') = ?::text`, [anotherAgent, minimum ?? null]);
    const updated = await this.#updateWhere(uuid, columns, agentId, carriesMinimum);
    if (updated !== undefined) return updated;
    const stored = await this.getNode(uuid);
    throw new InvalidParameterValue(
      `driver_info.${MINIMUM_TRUST_LEVEL_FIELD}`,
      `node ${uuid}: the stored minimum goes with agent ${String(stored.driverInfo['keylime_agent_uuid'])}, and this change names ${agentId ?? 'no agent'}; leave it out of this change and set it again once the new agent is named, if that machine should have it`,
    );
  }

  /** Stores the outcome of an attestation as the node's last attestation result. */
  async recordAttestation(uuid: string, record: AttestationRecord): Promise<Node> {
    return this.#update(uuid, {
      last_attestation_status: record.status,
      last_attestation_reason: record.reason,
      last_attestation_event_ids: JSON.stringify(record.eventIds),
      last_attestation_at: record.at ?? new Date(),
    });
  }

  /**
   * Stores the trust level the gate saw for the node (shown with the node, docs/identity.md), read for
   * the agent `readFor` (the node as the step saw it) names in `driver_info.keylime_agent_uuid`, or for
   * the one a locator found when it named none. Stored only while the node still names that agent (or
   * none): a `driver_info` naming another that landed during the read cleared the column
   * (`updateNode`), and the level, written after it, passed the new agent at the step's end hook by
   * the old one's level. Resolves to whether it was stored.
   *
   * @throws NodeNotFound when no node has this uuid.
   */
  async recordTrustLevel(readFor: Node, level: TrustLevel): Promise<boolean> {
    const renamed = this.knex.raw("driver_info->>'keylime_agent_uuid' is distinct from ?::text", [agentIdIn(readFor.driverInfo) ?? null]);
    if ((await this.#updateWhere(readFor.uuid, { trust_level: level }, undefined, renamed)) !== undefined) return true;
    await this.getNode(readFor.uuid);
    return false;
  }

  /**
   * Records that an operator accepts `level` for this node: from now on the clean and deploy gates
   * ask this node for at least `level` instead of the configured minimum (a `driver_info`
   * `keylime_minimum_trust_level` still wins). `note` says who decided and why; it is required.
   * `null` withdraws the acceptance, and so does a `driver_info` naming another agent (`updateNode`).
   *
   * @throws InvalidParameterValue for an unknown level or an empty note; NodeNotFound.
   */
  async acceptTrustLevel(uuid: string, level: TrustLevel | null, note = ''): Promise<Node> {
    if (level === null) {
      return this.#update(uuid, { accepted_trust_level: null, accepted_trust_level_note: null, accepted_trust_level_at: null });
    }
    if (!isTrustLevel(level)) throw new InvalidParameterValue('level', `must be one of ${TRUST_LEVELS.join(', ')}`);
    if (note.trim() === '' || note.length > 2000) throw new InvalidParameterValue('note', 'say who accepts the lower level and why (1 to 2000 characters)');
    return this.#update(uuid, { accepted_trust_level: level, accepted_trust_level_note: note, accepted_trust_level_at: new Date() });
  }

  async #update(uuid: string, columns: Record<string, unknown>, agentId?: string): Promise<Node> {
    const updated = await this.#updateWhere(uuid, columns, agentId);
    if (updated === undefined) {
      throw new NodeNotFound(uuid);
    }
    return updated;
  }

  /** Updates the node unless `refusedWhen` holds for its stored row; undefined when nothing was updated. */
  async #updateWhere(uuid: string, columns: Record<string, unknown>, agentId: string | undefined, refusedWhen?: Knex.Raw): Promise<Node | undefined> {
    if (!UUID.test(uuid)) {
      throw new NodeNotFound(uuid);
    }
    const [row] = await writing({ uuid, name: columns['name'] as string | null | undefined, agentId }, () => {
      const query = this.knex<NodeRow>('nodes').where({ uuid });
      if (refusedWhen !== undefined) query.andWhereRaw('not coalesce(?, false)', [refusedWhen]);
      return query.update({ ...columns, updated_at: this.knex.fn.now() }).returning('*');
    });
    return row === undefined ? undefined : fromRow(row as NodeRow);
  }
}

/** The `driver_info` field of a node's own minimum trust level (read by `AttestationHooks`). */
export const MINIMUM_TRUST_LEVEL_FIELD = 'keylime_minimum_trust_level';

/**
 * The columns that hold for the agent `driver_info` names, cleared when it names another: an operator's
 * acceptance of a lower trust level (`acceptTrustLevel`), and the level the gate read (`recordTrustLevel`),
 * which an end hook would otherwise judge the new agent by.
 */
const AGENT_BOUND_COLUMNS = ['accepted_trust_level', 'accepted_trust_level_note', 'accepted_trust_level_at', 'trust_level'] as const;

/** PostgreSQL SQLSTATEs (Appendix A of the PostgreSQL manual). */
const UNIQUE_VIOLATION = '23505';
const STRING_DATA_RIGHT_TRUNCATION = '22001';

/** The unique index of migration `20261204160000`: one node per `driver_info.keylime_agent_uuid`. */
const AGENT_CLAIM_INDEX = 'nodes_keylime_agent_uuid_unique';

/** The row being written: its keys, for naming the one a unique violation is about. */
interface WrittenKeys {
  readonly uuid: string;
  readonly name: string | null | undefined;
  /** `driver_info.keylime_agent_uuid` when the write sets `driver_info`. */
  readonly agentId: string | undefined;
}

/**
 * Runs a write and turns the database's refusals a caller can act on into typed errors (issue 11
 * item 14: PGlite's unique violation carried a multi-kilobyte dump of its own source). Anything else
 * is rethrown as it is.
 */
async function writing<T>(key: WrittenKeys, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const { code, constraint } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; constraint?: unknown };
    if (code === UNIQUE_VIOLATION && constraint === AGENT_CLAIM_INDEX) {
      const agent = key.agentId === undefined ? 'its keylime agent' : `agent ${key.agentId}`;
      throw new InvalidParameterValue('driver_info.keylime_agent_uuid', `${agent} is already named by the driver_info of another node`, { cause: error });
    }
    if (code === UNIQUE_VIOLATION) {
      const byName = typeof constraint === 'string' ? constraint.includes('name') : key.name !== undefined && key.name !== null;
      throw byName && typeof key.name === 'string'
        ? new NodeAlreadyExists('name', key.name)
        : new NodeAlreadyExists('uuid', key.uuid);
    }
    if (code === STRING_DATA_RIGHT_TRUNCATION) {
      throw new InvalidParameterValue('name', 'must be at most 255 characters');
    }
    throw error;
  }
}

function checkUuid(uuid: string): void {
  if (!UUID.test(uuid)) {
    throw new InvalidParameterValue('uuid', 'must be a UUID');
  }
}

/** `driver_info.keylime_agent_uuid` as the index sees it (`->>`: a string as it is, other JSON as text). */
function agentIdIn(driverInfo: DriverInfo | undefined): string | undefined {
  return jsonTextIn(driverInfo, 'keylime_agent_uuid');
}

/** A `driver_info` field as PostgreSQL's `->>` reads it: a string as it is, other JSON as text, null as absent. */
function jsonTextIn(driverInfo: DriverInfo | undefined, field: string): string | undefined {
  const value = driverInfo?.[field];
  return value === undefined || value === null ? undefined : typeof value === 'string' ? value : JSON.stringify(value);
}

function toColumns(input: NodeChanges): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  if (input.name !== undefined) columns['name'] = input.name;
  if (input.provisionState !== undefined) columns['provision_state'] = input.provisionState;
  if (input.attestationInterface !== undefined) columns['attestation_interface'] = input.attestationInterface;
  // jsonb values go in as JSON text: pg would send a JS array as a Postgres array literal.
  if (input.driverInfo !== undefined) columns['driver_info'] = JSON.stringify(input.driverInfo);
  if (input.instanceInfo !== undefined) columns['instance_info'] = JSON.stringify(input.instanceInfo);
  return columns;
}

function fromRow(row: NodeRow): Node {
  return {
    uuid: row.uuid,
    name: row.name,
    provisionState: row.provision_state,
    attestationInterface: row.attestation_interface,
    driverInfo: row.driver_info,
    instanceInfo: row.instance_info,
    lastAttestation: {
      status: row.last_attestation_status,
      reason: row.last_attestation_reason,
      eventIds: row.last_attestation_event_ids,
      at: toDate(row.last_attestation_at),
    },
    trust: {
      level: isTrustLevel(row.trust_level) ? row.trust_level : null,
      accepted:
        isTrustLevel(row.accepted_trust_level) && row.accepted_trust_level_at !== null
          ? { level: row.accepted_trust_level, note: row.accepted_trust_level_note ?? '', at: toDate(row.accepted_trust_level_at) as Date }
          : null,
    },
    createdAt: toDate(row.created_at) as Date,
    updatedAt: toDate(row.updated_at) as Date,
  };
}

function toDate(value: Date | string | null): Date | null {
  return value === null ? null : new Date(value);
}
