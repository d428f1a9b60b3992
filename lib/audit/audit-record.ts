import { hash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../bytes/canonical-json.js';
import { signAuditBatch } from './audit-batch-signature.js';

/** The hash a stream's first record links to: 64 zeros. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/**
 * What happened, before it is chained: a verdict or an admin action. `stream` is the chain the record
 * belongs to: the agent id for everything about one agent, `fleet` for actions on no single agent.
 */
export interface AuditEvent {
  readonly stream: string;
  /** ISO 8601 UTC with milliseconds (`2026-12-02T18:00:00.000Z`). */
  readonly at: string;
  /** Who did it: `verifier:<instance>` for verdicts, the certificate subject or token subject for people. */
  readonly actor: string;
  /** `verdict`, `agent.add`, `agent.delete`, `agent.stop`, `agent.reactivate`, `policy.put`, … */
  readonly action: string;
  readonly agentId: string | null;
  /** Plain JSON: the verdict, its event ids and context, or the action's arguments. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** One link of the hash chain, as stored and exported. */
export interface AuditRecord extends AuditEvent {
  /** 1, 2, 3, … within the stream. */
  readonly seq: number;
  /** `hash` of the stream's previous record (AUDIT_GENESIS_HASH for seq 1). */
  readonly prevHash: string;
  /** sha256 hex of the canonical JSON of everything above. */
  readonly hash: string;
  /** Ed25519 signature, base64: over the 32 hash bytes, or over the root `batchPath` leads to. */
  readonly signature: string;
  /**
   * The sibling hashes from `hash` up to the root that its batch's one signature covers
   * (`signAuditBatch`); empty when the record was signed on its own.
   */
  readonly batchPath: readonly string[];
}

/** An event chained after its stream's head: a record but for its signature. */
export type ChainedAuditEvent = Omit<AuditRecord, 'signature' | 'batchPath'>;

/**
 * The bytes a record's hash covers: every field but `hash` and `signature`, canonically. Written from a
 * fixed template with the members in canonical order, each member's value by `canonicalJson`: the text
 * `canonicalJson` gives the whole object, without building that object, its key list and each key's text
 * for every verdict (docs/fleet.md, twentieth pass). The types leave no member undefined.
 */
export function auditRecordBody(event: AuditEvent, seq: number, prevHash: string): string {
  return (
    `{"action":${canonicalJson(event.action)},"actor":${canonicalJson(event.actor)},"agent_id":${canonicalJson(event.agentId)},` +
    `"at":${canonicalJson(event.at)},"details":${canonicalJson(event.details)},"prev_hash":${canonicalJson(prevHash)},` +
    `"seq":${canonicalJson(seq)},"stream":${canonicalJson(event.stream)}}`
  );
}

export function auditRecordHash(event: AuditEvent, seq: number, prevHash: string): string {
  return hash('sha256', auditRecordBody(event, seq, prevHash), 'hex');
}

/** Chains `event` after a record with `prevHash`. */
export function chainAuditEvent(event: AuditEvent, seq: number, prevHash: string): ChainedAuditEvent {
  return { ...event, seq, prevHash, hash: auditRecordHash(event, seq, prevHash) };
}

/** Signs chained events with ONE signature of the verifier's audit key (`signAuditBatch`), in the order given. */
export function sealAuditRecords(chained: readonly ChainedAuditEvent[], key: KeyObject): AuditRecord[] {
  const seal = signAuditBatch(chained.map((link) => link.hash), key);
  return chained.map((link, index) => ({ ...link, signature: seal.signature, batchPath: seal.paths[index] ?? [] }));
}
