import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../bytes/canonical-json.js';

/** The manifest's format; an export without a manifest is the first format (records only). */
export const AUDIT_MANIFEST_FORMAT = 'ironlime-audit-export/2';

/** What the database held for one stream when the export was made. */
export interface AuditManifestStream {
  readonly stream: string;
  /** The first seq exported: 1 for a complete export, the first at or after `since` otherwise. */
  readonly fromSeq: number;
  /** The stream's last record in the database (seq 0 and the genesis hash when it has none). */
  readonly lastSeq: number;
  readonly lastHash: string;
  /**
   * Written only when `audit_heads` disagreed with the last record: the head as stored, or null when
   * the stream had no head row. Either way the export is broken (records were deleted or inserted).
   */
  readonly head?: { readonly seq: number; readonly hash: string } | null;
}

/** The signed last line of an export: which streams it holds and where each one starts and ends. */
export interface AuditManifest {
  /** The `--agent` of the export, or null for every stream. */
  readonly agent: string | null;
  /** The `--since` of the export, or null for a complete one (every stream from seq 1). */
  readonly since: string | null;
  /** Every stream of the export's scope, sorted by name. */
  readonly streams: readonly AuditManifestStream[];
}

export interface SealedAuditManifest {
  readonly manifest: AuditManifest;
  /** Ed25519 by the audit key over `auditManifestBody`, base64. */
  readonly signature: string;
}

/**
 * The bytes the manifest's signature covers: its canonical JSON, format included. They are never 32
 * bytes long, so no manifest signature can be taken for a record's (over a 32-byte hash or batch root).
 */
export function auditManifestBody(manifest: AuditManifest): string {
  return canonicalJson({
    format: AUDIT_MANIFEST_FORMAT,
    agent: manifest.agent,
    since: manifest.since,
    streams: manifest.streams.map((entry) => ({
      stream: entry.stream,
      from_seq: entry.fromSeq,
      last_seq: entry.lastSeq,
      last_hash: entry.lastHash,
      head: entry.head,
    })),
  });
}

/** Signs a manifest with the audit key: only the key holder can say where a stream ends. */
export function sealAuditManifest(manifest: AuditManifest, key: KeyObject): SealedAuditManifest {
  return { manifest, signature: sign(null, Buffer.from(auditManifestBody(manifest)), key).toString('base64') };
}

export function auditManifestSigned(sealed: SealedAuditManifest, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(auditManifestBody(sealed.manifest)), publicKey, Buffer.from(sealed.signature, 'base64'));
  } catch {
    return false;
  }
}

/** The manifest line of an export: `{"manifest":<body>,"signature":…}`, canonical. */
export function formatAuditManifestLine(sealed: SealedAuditManifest): string {
  return `{"manifest":${auditManifestBody(sealed.manifest)},"signature":${JSON.stringify(sealed.signature)}}\n`;
}
