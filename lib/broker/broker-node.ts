import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { enteringAkPublicKey } from '../attestation/agent-policies.js';
import { parseTpmPolicy, type TpmPolicy } from '../attestation/tpm-policy.js';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import { parseRuntimePolicy } from '../ima/runtime-policy.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import { BoundedCache } from '../cache/bounded-cache.js';

/** What the operator told the broker about a node, as stored (`broker_nodes`). */
export interface BrokerNodeRecord {
  readonly agentId: string;
  /** base64 TPM2B_PUBLIC of the AK (the registrar's `aik_tpm`); null: tokens only, no TPM evidence. */
  readonly akTpm: string | null;
  /** Keylime `tpm_policy` JSON text (`{}` for none). */
  readonly tpmPolicy: string;
  /** Runtime (IMA) policy JSON text, or null. */
  readonly runtimePolicy: string | null;
  /** Measured-boot refstate JSON text, or null. */
  readonly mbRefstate: string | null;
  readonly groups: readonly string[];
}

/** A node's policies in the form the engine's checks take, built once per record content. */
export interface CompiledNode {
  readonly record: BrokerNodeRecord;
  readonly ak: KeyObject | null;
  readonly tpmPolicy: TpmPolicy;
  readonly runtimePolicy: CompiledRuntimePolicy | null;
  readonly mbRefstate: MbRefstate | null;
}

/**
 * Parses and compiles a node's AK and policies with the verifier's own parsers (lib/tpm, lib/ima,
 * lib/mb). Throws their typed errors for malformed input — the admin route runs this before storing —
 * and `TpmKeyError` for an AK no TPM key can be trusted as (`enteringAkPublicKey`: RSA under 2048
 * bits, ROCA), also when the node was stored before such AKs were refused: it is not trusted by it.
 */
export function compileNode(record: BrokerNodeRecord): CompiledNode {
  return {
    record,
    ak: record.akTpm === null ? null : enteringAkPublicKey(record.akTpm),
    tpmPolicy: parseTpmPolicy(record.tpmPolicy),
    runtimePolicy: record.runtimePolicy === null ? null : compileRuntimePolicy(parseRuntimePolicy(record.runtimePolicy)),
    mbRefstate: record.mbRefstate === null ? null : parseMbRefstate(record.mbRefstate),
  };
}

/** A compiled node and the digest its row was stored with (null: a row written before digests). */
export interface CompiledNodeEntry {
  readonly digest: string | null;
  readonly node: CompiledNode;
}

/**
 * Compiled nodes one worker keeps: a fleet's worth (as the other broker caches), so a worker that
 * serves every admin put does not hold every node's compiled policies for ever.
 */
const COMPILED_NODES_LIMIT = 10_000;

/**
 * Compiled nodes by agent id with the stored digest they were compiled from: compiling a runtime policy
 * costs far more than a quote check, so a node is compiled once per change. An attest appraises against
 * the entry it finds and claims its session only if the row still has that digest
 * (`claimAttestedSessions`); a changed record (another digest, written by any worker) is compiled afresh.
 */
export class CompiledNodeCache {
  private readonly entries = new BoundedCache<string, CompiledNodeEntry>(COMPILED_NODES_LIMIT);

  /** The node as last compiled here, if it was. */
  lookup(agentId: string): CompiledNodeEntry | undefined {
    return this.entries.get(agentId);
  }

  /** Compiles a record read from the database with the digest stored with it. */
  compile(record: BrokerNodeRecord, digest: string | null): CompiledNodeEntry {
    return this.keep({ digest, node: compileNode(record) });
  }

  /**
   * Keeps a node compiled from the record just stored with `entry.digest` (the admin put). Should
   * another put of the node land in between, the claim's digest check finds the difference and the
   * attest compiles the stored record afresh.
   */
  keep(entry: CompiledNodeEntry): CompiledNodeEntry {
    // A node without an AK (token access only) never attests here: its entry would go unread, and
    // one kept from an earlier put with an AK would only cost its next attest a wasted appraisal.
    if (entry.node.record.akTpm === null) {
      this.entries.delete(entry.node.record.agentId);
    } else {
      this.entries.set(entry.node.record.agentId, entry);
    }
    return entry;
  }

  forget(agentId: string): void {
    this.entries.delete(agentId);
  }
}

/** SHA-256 over the AK and policy texts: equal digests, equal compiled node. */
export function nodeDigest(record: BrokerNodeRecord): string {
  return createHash('sha256')
    .update(JSON.stringify([record.akTpm, record.tpmPolicy, record.runtimePolicy, record.mbRefstate]))
    .digest('hex');
}
