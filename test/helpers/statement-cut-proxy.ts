import type { Socket } from 'node:net';
import { TcpProxy } from '../verifier/helpers/tcp-proxy.js';

/** PostgreSQL's SSLRequest code (protocol §55.2.10): answered by the server with one byte, then the real startup. */
const SSL_REQUEST = 80877103;

/**
 * A TCP proxy in front of PostgreSQL that cuts the database away at a chosen statement: once armed
 * with `cutAt(marker)`, the first frontend message whose statement text contains `marker` is not
 * passed on; its connection and every other open one are cut, and new connections are refused until
 * `restore()`. The statement never reaches the server, so its transaction rolls back there: the
 * database went away in the middle of the service's work, exactly at that statement.
 *
 * It reads the frontend messages (protocol §55.7: a startup message without a type byte, then type
 * byte + Int32 length) only to look for the marker in a simple Query's text, a Parse's (statement
 * name, then text) or, for a named prepared statement parsed once per connection and then only bound,
 * a Bind's (portal, then the statement's name); bytes go on as received, a whole message at a time.
 */
export class StatementCutProxy extends TcpProxy {
  private armedFor: string | undefined;
  /** Whether the armed statement reaches the server first (its reply is what is cut). */
  private afterItRuns = false;
  /** Statements cut so far. */
  cuts = 0;

  /**
   * The next statement containing `marker` finds the database gone, until `restore()`. With
   * `afterItRuns` the statement (and the messages sent with it) reaches the server, and the cut comes
   * with the server's first reply to it, which the client never sees: a lone statement has then run
   * and committed, and the client cannot know it.
   */
  cutAt(marker: string, afterItRuns = false): void {
    this.armedFor = marker;
    this.afterItRuns = afterItRuns;
  }

  override restore(): void {
    this.armedFor = undefined;
    super.restore();
  }

  override cut(): void {
    this.cuts += 1;
    super.cut();
  }

  protected override relay(client: Socket, upstream: Socket): void {
    let cutOnReply = false;
    upstream.on('data', (chunk: Buffer) => {
      if (cutOnReply) {
        this.cut();
        return;
      }
      client.write(chunk);
    });
    let pending = Buffer.alloc(0);
    let startup = true;
    const prepared = new Map<string, string>();
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (this.isCut) {
          client.destroy();
          return;
        }
        const length = startup ? (pending.length < 8 ? -1 : pending.readInt32BE(0)) : pending.length < 5 ? -1 : 1 + pending.readInt32BE(1);
        if (length < 0 || pending.length < length) return;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        // Read even when not armed: a statement parsed now may be bound by name once armed.
        const statement = startup ? '' : statementOf(message, prepared);
        if (startup) {
          startup = message.readInt32BE(4) === SSL_REQUEST;
        } else if (this.armedFor !== undefined && statement.includes(this.armedFor)) {
          this.armedFor = undefined;
          if (!this.afterItRuns) {
            this.cut();
            return;
          }
          cutOnReply = true;
        }
        upstream.write(message);
      }
    });
  }
}

/** The statement text a frontend message runs (Query, Parse, Bind of a statement `prepared` names), or ''. */
function statementOf(message: Buffer, prepared: Map<string, string>): string {
  const type = String.fromCharCode(message[0] as number);
  const body = message.subarray(5).toString('utf8');
  const [first = '', second = ''] = body.split('\0', 2);
  switch (type) {
    case 'Q':
      return body;
    case 'P':
      if (first !== '') prepared.set(first, second);
      return second;
    case 'B':
      return prepared.get(second) ?? '';
    default:
      return '';
  }
}
