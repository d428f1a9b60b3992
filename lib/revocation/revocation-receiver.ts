import { execFile } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { IsString, MaxLength } from 'class-validator';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { ForbiddenError } from '../http/http-errors.js';
import type { RevocationEnvelope, RevocationMessage } from './revocation-message.js';
import { checkRevocationEnvelope } from './revocation-signature.js';

/** `POST /v2.x/notifications/revocation` body (spec §2): the envelope as the verifier sends it. */
export class RevocationEnvelopeBody {
  @IsString()
  @MaxLength(1024 * 1024)
  msg!: string;

  @IsString()
  @MaxLength(8192)
  signature!: string;
}

/** Something the node does when another node is revoked (Keylime's revocation actions). */
export type RevocationAction = (message: RevocationMessage) => Promise<void>;

/**
 * An action that runs an executable with the revocation message JSON on stdin (Keylime's actions are
 * Python modules from the payload; ours are any executable). A non-zero exit or a timeout is an error.
 */
export function scriptAction(file: string, timeoutMs = 30_000): RevocationAction {
  return (message) =>
    new Promise((resolve, reject) => {
      const child = execFile(file, [], { timeout: timeoutMs }, (error) => (error === null ? resolve() : reject(error)));
      child.stdin?.end(JSON.stringify(message));
    });
}

export interface RevocationReceiverOptions {
  /** The verifier's revocation public key (from `RevocationNotifier-cert.crt`). */
  readonly key: KeyObject;
  readonly actions: readonly RevocationAction[];
  readonly log?: Logger;
}

/**
 * The agent side of revocation: checks the envelope's signature against the configured key and only
 * then runs the actions, in order. A forged, unsigned or malformed message is refused with
 * `ForbiddenError` (403) and runs nothing. An action that fails is logged; the others still run and the
 * sender is answered 200 — the message was authentic and is not worth re-sending.
 */
export class RevocationReceiver {
  private readonly log: Logger;

  constructor(private readonly options: RevocationReceiverOptions) {
    this.log = options.log ?? pino({ level: 'silent' });
  }

  async receive(envelope: RevocationEnvelope): Promise<RevocationMessage> {
    const check = checkRevocationEnvelope(envelope, this.options.key);
    if (!check.ok) {
      this.log.warn({ reason: check.reason }, 'revocation notification refused');
      throw new ForbiddenError(check.reason);
    }
    this.log.warn({ agentId: check.message.agent_id, eventId: check.message.event_id }, 'revocation notification received');
    for (const action of this.options.actions) {
      try {
        await action(check.message);
      } catch (error) {
        this.log.error({ err: error, agentId: check.message.agent_id }, 'revocation action failed');
      }
    }
    return check.message;
  }
}
