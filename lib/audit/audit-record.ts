import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../bytes/canonical-json.js';

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
  /** Ed25519 signature over the 32 hash bytes, base64. */
  readonly signature: string;
}

/** The bytes a record's hash covers: every field but `hash` and `signature`, canonically. */
export function auditRecordBody(event: AuditEvent, seq: number, prevHash: string): string {
  return canonicalJson({
    action: event.action,
    actor: event.actor,
    agent_id: event.agentId,
    at: event.at,
    details: event.details,
    prev_hash: prevHash,
    seq,
    stream: event.stream,
  });
}

export function auditRecordHash(event: AuditEvent, seq: number, prevHash: string): string {
  return createHash('sha256').update(auditRecordBody(event, seq, prevHash)).digest('hex');
}

/** Chains `event` after a record with `prevHash` and signs it with the verifier's audit key. */
export function sealAuditRecord(event: AuditEvent, seq: number, prevHash: string, key: KeyObject): AuditRecord {
  const hash = auditRecordHash(event, seq, prevHash);
  const signature = sign(null, Buffer.from(hash, 'hex'), key).toString('base64');
  return { ...event, seq, prevHash, hash, signature };
}

/** True when `signature` is the audit key's signature over `hash`. */
export function auditSignatureValid(hash: string, signature: string, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(hash, 'hex'), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
