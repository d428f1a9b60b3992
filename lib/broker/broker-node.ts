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

/**
 * A node's policies in the form the engine's checks take, built once per record content. It holds no
 * policy text: a cached node would keep its own copy of texts of megabytes read with its row.
 */
export interface CompiledNode {
  readonly agentId: string;
  /** The stored AK text (base64 TPM2B_PUBLIC), bound into the node's tokens and sessions; null: tokens only. */
  readonly akTpm: string | null;
  readonly ak: KeyObject | null;
  readonly tpmPolicy: TpmPolicy;
  readonly runtimePolicy: CompiledRuntimePolicy | null;
  readonly mbRefstate: MbRefstate | null;
}

/**
 * Values built from a text, by the SHA-256 of that text, held weakly: a value lives as long as something
 * (a cached node) uses it, and a text built again meanwhile, from another node's row, gets that value.
 */
class SharedByText<T extends object> {
  private readonly values = new Map<string, WeakRef<T>>();
  private readonly collected = new FinalizationRegistry<string>((digest) => {
    if (this.values.get(digest)?.deref() === undefined) this.values.delete(digest);
  });

  constructor(private readonly build: (text: string) => T) {}

  of(text: string): T {
    const digest = createHash('sha256').update(text).digest('hex');
    const alive = this.values.get(digest)?.deref();
    if (alive !== undefined) return alive;
    const value = this.build(text);
    this.values.set(digest, new WeakRef(value));
    this.collected.register(value, digest);
    return value;
  }
}

/**
 * The runtime policies and refstates compiled in this process, one copy per text (as the verifier's
 * `PolicyCache` keeps one per stored policy): a fleet's nodes are stored with the same policy, and
 * compiled per node a 20,000-file runtime policy (2.2 MB of text) cost 6.8 MB of heap for each one.
 */
const SHARED_RUNTIME_POLICIES = new SharedByText((text) => compileRuntimePolicy(parseRuntimePolicy(text)));
const SHARED_REFSTATES = new SharedByText(parseMbRefstate);

/**
 * Parses and compiles a node's AK and policies with the verifier's own parsers (lib/tpm, lib/ima,
 * lib/mb); a runtime policy or refstate text compiled already, and still in use, is shared
 * (`SharedByText`). Throws their typed errors for malformed input — the admin route runs this before
 * storing — and `TpmKeyError` for an AK no TPM key can be trusted as (`enteringAkPublicKey`: RSA under
 * 2048 bits, ROCA), also when the node was stored before such AKs were refused: it is not trusted by it.
 */
export function compileNode(record: BrokerNodeRecord): CompiledNode {
  return {
    agentId: record.agentId,
    akTpm: record.akTpm,
    ak: record.akTpm === null ? null : enteringAkPublicKey(record.akTpm),
    tpmPolicy: parseTpmPolicy(record.tpmPolicy),
    runtimePolicy: record.runtimePolicy === null ? null : SHARED_RUNTIME_POLICIES.of(record.runtimePolicy),
    mbRefstate: record.mbRefstate === null ? null : SHARED_REFSTATES.of(record.mbRefstate),
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
    if (entry.node.akTpm === null) {
      this.entries.delete(entry.node.agentId);
    } else {
      this.entries.set(entry.node.agentId, entry);
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
