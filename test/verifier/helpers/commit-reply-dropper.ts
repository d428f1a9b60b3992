import type { Socket } from 'node:net';
import { LocalTcpProxy } from '../../helpers/local-tcp-proxy.js';

/** PostgreSQL's SSLRequest code (protocol §55.2.10): answered by the server with one byte, then the real startup. */
const SSL_REQUEST = 80877103;

/**
 * A TCP proxy between a service and PostgreSQL that makes a COMMIT's outcome unknown to the client:
 * once armed, the first transaction that sent a statement containing `marker` has its COMMIT passed
 * to the server, which commits; the server's reply is swallowed and the connection cut. The client
 * sees its COMMIT fail although the transaction is stored. Everything else passes through untouched.
 *
 * It reads the frontend messages (protocol §55.7: a startup message without a type byte, then
 * type byte + Int32 length) only to watch for the marker and the COMMIT; bytes go on as received. A
 * named prepared statement is parsed once per connection, then only bound: its Bind (the statement's
 * name, the second string of the body) sends the text its Parse (name, then text) gave that name.
 */
export class CommitReplyDropper extends LocalTcpProxy {
  private armedFor: string | undefined;
  /** COMMIT replies swallowed so far. */
  dropped = 0;

  /** The next transaction sending a statement that contains `marker` loses its COMMIT reply. */
  dropNextCommitReplyAfter(marker: string): void {
    this.armedFor = marker;
  }

  protected accept(client: Socket): void {
    const { upstream } = this.openUpstream(client);
    let pending = Buffer.alloc(0);
    let startup = true;
    let sawMarker = false;
    let swallowReply = false;
    const prepared = new Map<string, string>();
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (startup) {
          if (pending.length < 8) break;
          const length = pending.readInt32BE(0);
          if (pending.length < length) break;
          startup = pending.readInt32BE(4) === SSL_REQUEST;
          pending = pending.subarray(length);
          continue;
        }
        if (pending.length < 5) break;
        const length = pending.readInt32BE(1);
        if (pending.length < 1 + length) break;
        const type = String.fromCharCode(pending[0] as number);
        const body = pending.subarray(5, 1 + length).toString('utf8');
        pending = pending.subarray(1 + length);
        if (type === 'Q' && /^\s*begin\b/i.test(body)) {
          sawMarker = false;
        }
        const [first = '', second = ''] = body.split('\0', 2);
        if (type === 'P' && first !== '') prepared.set(first, second);
        const sent = type === 'B' ? (prepared.get(second) ?? '') : type === 'P' || type === 'Q' ? body : '';
        if (this.armedFor !== undefined && sent.includes(this.armedFor)) {
          sawMarker = true;
        }
        if (type === 'Q' && /^\s*commit\b/i.test(body) && sawMarker && this.armedFor !== undefined) {
          this.armedFor = undefined;
          swallowReply = true;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (swallowReply) {
        // The server has committed and answered: the client never hears of it.
        this.dropped += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  }
}
