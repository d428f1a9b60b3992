import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { AuditEvent } from '../audit/audit-record.js';
import { certificateSubject } from '../auth/request-principal.js';
import { FLEET_STREAM } from '../verifier/reserved-agent-ids.js';

/** The actor of a change made by a caller in the broker's process (provisioning, tests), not through a route. */
export const IN_PROCESS_ACTOR = 'broker:in-process';

/** The actor of a revocation recorded from a verifier's signed message (route or in-process target). */
export const VERIFIER_MESSAGE_ACTOR = 'verifier revocation message';

/** The actor of an admin route's change: `cert:<CN>` of the client certificate TLS verified, as the verifier writes it. */
export function adminActor(certificate: PeerCertificate | undefined): string {
  return certificate === undefined ? IN_PROCESS_ACTOR : `cert:${certificateSubject(certificate)}`;
}

/**
 * The audit record of one broker change (docs/audit.md, "What is appended"): changes of a node
 * (`node.put`, `node.delete`, `node.revoke`, `node.reinstate`) go to the node's stream, changes of a
 * resource (`resource.put`, `resource.delete`) to the `fleet` stream. `details` never holds a secret.
 */
export function brokerAuditEvent(change: {
  readonly actor: string;
  readonly action: string;
  readonly agentId: string | null;
  readonly details: Readonly<Record<string, unknown>>;
  /** Unix milliseconds. */
  readonly at: number;
}): AuditEvent {
  return {
    stream: change.agentId ?? FLEET_STREAM,
    at: new Date(change.at).toISOString(),
    actor: change.actor,
    action: change.action,
    agentId: change.agentId,
    details: change.details,
  };
}

/** The longest list, as JSON, a record keeps whole (an admin body may list 100,000 agent ids of 80 characters). */
export const MAX_AUDITED_LIST_JSON = 16 * 1024;

/**
 * A list of names (a policy's agents or groups, a node's groups) as its record keeps it: whole when its
 * JSON has at most `MAX_AUDITED_LIST_JSON` characters, else its `count` and the `sha256` of its JSON,
 * so a record stays well under the 1 MiB an export line may hold (`MAX_AUDIT_LINE_BYTES`) and a genuine
 * export always verifies.
 */
export function auditedList(list: readonly string[]): readonly string[] | { readonly count: number; readonly sha256: string } {
  const text = JSON.stringify(list);
  return text.length <= MAX_AUDITED_LIST_JSON ? list : { count: list.length, sha256: createHash('sha256').update(text).digest('hex') };
}

/** The longest text (or JSON of another value) a record keeps whole: Keylime's `event_id`s and `event_time`s are a few dozen characters. */
export const MAX_AUDITED_TEXT = 1024;

/**
 * A field of a verifier's message as its record keeps it: whole up to `MAX_AUDITED_TEXT` characters
 * (as JSON when not a string), else its `length` and the `sha256` of its text. A signed message may
 * hold up to 1 MiB, and a record over the 1 MiB an export line may hold would make the genuine export
 * unverifiable; the record's `message_sha256` still names the whole message.
 */
export function auditedText(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length <= MAX_AUDITED_TEXT ? value : { length: text.length, sha256: createHash('sha256').update(text).digest('hex') };
}
