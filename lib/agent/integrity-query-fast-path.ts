import { hasOnlyKeys, isAbsentOr, isOneOf, isStringMatching, type FastDto } from '../http/fast-path-checks.js';
import { IntegrityQuoteQuery } from './agent-dtos.js';

const KEYS: ReadonlySet<string> = new Set(['nonce', 'mask', 'partial', 'ima_ml_entry']);
const REQUIRED = ['nonce', 'mask', 'partial'] as const;
/** `IsNonce`: 1 to 64 ASCII letters and digits. */
const NONCE = /^[A-Za-z0-9]{1,64}$/;
/** `IsPcrMask`, narrowed: at most 6 hex digits can only name PCRs 0–23. */
const MASK = /^(?:0[xX])?[0-9a-fA-F]{1,6}$/;
const PARTIAL: ReadonlySet<string> = new Set(['0', '1']);
/** The DTO's `ima_ml_entry` pattern. */
const ENTRY = /^[0-9]{1,12}$/;

/**
 * The fast path of `GET quotes/integrity`'s query (asked every round by a verifier): the query a
 * verifier sends, checked by the predicates of `fast-path-checks.ts` without class-transformer and
 * class-validator; anything else (a repeated key, a null, a longer mask) goes to `IntegrityQuoteQuery`.
 */
function fastIntegrityQuoteQuery(plain: unknown): IntegrityQuoteQuery | undefined {
  if (!hasOnlyKeys(plain, KEYS, REQUIRED)) return undefined;
  const { nonce, mask, partial, ima_ml_entry: entry } = plain;
  if (!isStringMatching(nonce, NONCE) || !isStringMatching(mask, MASK) || !isOneOf(partial, PARTIAL) || !isAbsentOr(entry, (value) => isStringMatching(value, ENTRY))) {
    return undefined;
  }
  return { nonce, mask, partial, ...(entry === undefined ? {} : { ima_ml_entry: entry as string }) };
}

export const INTEGRITY_QUOTE_QUERY: FastDto<IntegrityQuoteQuery> = { dto: IntegrityQuoteQuery, fast: fastIntegrityQuoteQuery };
