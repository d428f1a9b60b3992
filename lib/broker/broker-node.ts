import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { akPublicKey } from '../attestation/agent-policies.js';
import { parseTpmPolicy, type TpmPolicy } from '../attestation/tpm-policy.js';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import { parseRuntimePolicy } from '../ima/runtime-policy.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';

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
 * lib/mb). Throws their typed errors for malformed input — the admin route runs this before storing,
 * so a stored node always compiles.
 */
export function compileNode(record: BrokerNodeRecord): CompiledNode {
  return {
    record,
    ak: record.akTpm === null ? null : akPublicKey(record.akTpm),
    tpmPolicy: parseTpmPolicy(record.tpmPolicy),
    runtimePolicy: record.runtimePolicy === null ? null : compileRuntimePolicy(parseRuntimePolicy(record.runtimePolicy)),
    mbRefstate: record.mbRefstate === null ? null : parseMbRefstate(record.mbRefstate),
  };
}

/**
 * Compiled nodes by content digest: compiling a runtime policy costs far more than a quote check, so a
 * node is compiled once per change (the digest is stored with the row, `nodeDigest`), and a changed
 * record (new digest) is compiled afresh.
 */
export class CompiledNodeCache {
  private readonly entries = new Map<string, { digest: string; node: CompiledNode }>();

  /** The compiled node for this digest, if compiled before. */
  lookup(agentId: string, digest: string): CompiledNode | undefined {
    const cached = this.entries.get(agentId);
    return cached !== undefined && cached.digest === digest ? cached.node : undefined;
  }

  /** Compiles a record read from the database; `digest` null (an older row) is computed here. */
  compile(record: BrokerNodeRecord, digest: string | null): CompiledNode {
    const node = compileNode(record);
    this.entries.set(record.agentId, { digest: digest ?? nodeDigest(record), node });
    return node;
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
