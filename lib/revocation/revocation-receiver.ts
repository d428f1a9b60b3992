import { execFile } from 'node:child_process';
import { createHash, type KeyObject } from 'node:crypto';
import { IsString, MaxLength } from 'class-validator';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { IronlimeError } from '../../interfaces/errors.js';
import { BoundedCache } from '../cache/bounded-cache.js';
import { ForbiddenError } from '../http/http-errors.js';
import type { RevocationEnvelope, RevocationMessage } from './revocation-message.js';
import { checkRevocationEnvelope } from './revocation-signature.js';

/** Authentic notices whose actions wait to run, at most; past it a notice is refused (503) and re-sent by the verifier. */
const MAX_WAITING_NOTICES = 64;

/** How many notices already taken are remembered, so that a re-sent or replayed one runs nothing again. */
const REMEMBERED_NOTICES = 4096;

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

/** Too many authentic notices wait for their actions: this one is not taken, and its sender tries again later. */
export class RevocationQueueFull extends IronlimeError {
  constructor() {
    super('ERR_REVOCATION_QUEUE_FULL', `${MAX_WAITING_NOTICES} revocation notices wait for their actions; try again later`);
  }
}

/**
 * An action that runs an executable with the revocation message JSON on stdin (Keylime's actions are
 * Python modules from the payload; ours are any executable). A non-zero exit or a timeout is an error.
 */
export function scriptAction(file: string, timeoutMs = 30_000): RevocationAction {
  return (message) =>
    new Promise((resolve, reject) => {
      const child = execFile(file, [], { timeout: timeoutMs }, (error) => (error === null ? resolve() : reject(error)));
      // An executable that exits without reading its input makes the write fail (EPIPE); unhandled, that
      // error would end the agent. Its exit status is the action's result.
      child.stdin?.on('error', () => undefined);
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
 * then takes the notice. A forged, unsigned or malformed message, or one of a type Keylime does not
 * send, is refused with `ForbiddenError` (403) and runs nothing. An authentic notice is answered at
 * once and its actions run after, one notice at a time, in the order received: an action that takes
 * longer than the sender waits (a firewall reload) must not make it re-send the notice and start the
 * actions again beside the first run. A notice already taken (the same signed message: a re-send, or
 * a replay) is answered 200 and runs nothing again. An action that fails is logged; the others still
 * run — the message was authentic and is not worth re-sending.
 */
export class RevocationReceiver {
  private readonly log: Logger;
  /** The SHA-256 of each notice taken; past `REMEMBERED_NOTICES` the oldest is forgotten. */
  private readonly taken = new BoundedCache<string, true>(REMEMBERED_NOTICES);
  private waiting = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: RevocationReceiverOptions) {
    this.log = options.log ?? pino({ level: 'silent' });
  }

  /** Takes an authentic notice (its actions run after); resolves to it. @throws ForbiddenError, RevocationQueueFull */
  async receive(envelope: RevocationEnvelope): Promise<RevocationMessage> {
    const check = checkRevocationEnvelope(envelope, this.options.key);
    if (!check.ok) {
      this.log.warn({ reason: check.reason }, 'revocation notification refused');
      throw new ForbiddenError(check.reason);
    }
    const message = check.message;
    const digest = createHash('sha256').update(envelope.msg, 'utf8').digest('hex');
    if (this.taken.has(digest)) {
      this.log.info({ agentId: message.agent_id, eventId: message.event_id }, 'revocation notification already taken; its actions do not run again');
      return message;
    }
    if (this.waiting >= MAX_WAITING_NOTICES) {
      this.log.error({ agentId: message.agent_id, waiting: this.waiting }, 'revocation notification not taken: too many wait for their actions');
      throw new RevocationQueueFull();
    }
    this.taken.set(digest, true);
    this.log.warn({ agentId: message.agent_id, eventId: message.event_id }, 'revocation notification received');
    this.waiting += 1;
    this.queue = this.queue.then(() => this.runActions(message)).finally(() => (this.waiting -= 1));
    return message;
  }

  /** Resolves once the actions of every notice taken so far have run (tests; a clean shutdown). */
  settled(): Promise<void> {
    return this.queue;
  }

  private async runActions(message: RevocationMessage): Promise<void> {
    for (const action of this.options.actions) {
      try {
        await action(message);
      } catch (error) {
        this.log.error({ err: error, agentId: message.agent_id }, 'revocation action failed');
      }
    }
  }
}
