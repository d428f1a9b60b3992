/** The evidence types a push agent can send in phase 2. */
const SENDABLE: ReadonlySet<unknown> = new Set(['tpm_quote', 'uefi_log', 'ima_log']);

/**
 * Phase 1's `evidence_requested` from the verifier's 201, or undefined when there is no such list or
 * it names nothing this agent can send: a broken answer, not a request for empty evidence (Keylime
 * may ask for no quote, but always for something).
 */
export function evidenceRequested(document: unknown): readonly unknown[] | undefined {
  const requested = (document as { data?: { attributes?: { evidence_requested?: unknown } } } | undefined)?.data?.attributes?.evidence_requested;
  if (!Array.isArray(requested)) return undefined;
  const sendable = requested.some((item: unknown) => typeof item === 'object' && item !== null && SENDABLE.has((item as { evidence_type?: unknown }).evidence_type));
  return sendable ? requested : undefined;
}
