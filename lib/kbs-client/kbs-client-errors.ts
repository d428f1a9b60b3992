import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/** Longest broker `type` or `detail` kept: ample for the broker's own messages, not for a hostile 8 MiB. */
const MAX_BROKER_TEXT_CHARS = 1024;

/**
 * The broker refused a request: its HTTP status and the RFC 7807 `type` (the KBS error name, e.g.
 * `PolicyDeny`, `AttestationError`) and `detail`. Code ERR_REMOTE_HTTP_STATUS, like other remote refusals.
 * `type` and `detail` are the broker's text, which the CLI prints: they are kept printable and short.
 */
export class KbsRefusedError extends IronlimeError {
  readonly remoteHttpStatus: number;
  readonly kbsType: string;
  readonly detail: string;

  constructor(url: string, status: number, kbsType: string, detail: string) {
    const type = printableBrokerText(kbsType);
    const text = printableBrokerText(detail);
    super('ERR_REMOTE_HTTP_STATUS', `${url}: ${status} ${type}: ${text}`);
    this.remoteHttpStatus = status;
    this.kbsType = type;
    this.detail = text;
  }
}

/**
 * The broker's text cut to MAX_BROKER_TEXT_CHARS, with every control or format character (terminal
 * escapes, line breaks, bidi overrides, a surrogate half left by the cut) and the Unicode line and
 * paragraph separators (U+2028, U+2029: line breaks too, but neither control nor format) turned into a space.
 */
function printableBrokerText(text: string): string {
  const cut = text.length > MAX_BROKER_TEXT_CHARS ? `${text.slice(0, MAX_BROKER_TEXT_CHARS)}…` : text;
  return cut.replace(/[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu, ' ');
}

/** The broker's answer is not what the protocol says (shape, JWE that does not open, size). */
export class KbsBadReplyError extends IronlimeError {
  constructor(url: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_BAD_REMOTE_REPLY', `${url}: bad KBS reply: ${detail}`, options);
  }
}
