import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/**
 * The broker refused a request: its HTTP status and the RFC 7807 `type` (the KBS error name, e.g.
 * `PolicyDeny`, `AttestationError`) and `detail`. Code ERR_REMOTE_HTTP_STATUS, like other remote refusals.
 */
export class KbsRefusedError extends IronlimeError {
  readonly remoteHttpStatus: number;
  readonly kbsType: string;
  readonly detail: string;

  constructor(url: string, status: number, kbsType: string, detail: string) {
    super('ERR_REMOTE_HTTP_STATUS', `${url}: ${status} ${kbsType}: ${detail}`);
    this.remoteHttpStatus = status;
    this.kbsType = kbsType;
    this.detail = detail;
  }
}

/** The broker's answer is not what the protocol says (shape, JWE that does not open, size). */
export class KbsBadReplyError extends IronlimeError {
  constructor(url: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_BAD_REMOTE_REPLY', `${url}: bad KBS reply: ${detail}`, options);
  }
}
