import { connect, type TLSSocket } from 'node:tls';

/** Where and what `runEvidenceLoad` sends. */
export interface EvidenceLoadTarget {
  readonly url: string;
  readonly caCert: string;
  readonly path: string;
  readonly body: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)/i;

/**
 * The evidence bench's load generator, made cheap so that the verifier, not the client, is measured:
 * `connections` keep-alive TLS connections, each sending one request (bytes built once) as soon as
 * the previous answer has arrived, until `total` have been answered. An answer is read only as far
 * as needed: status line, Content-Length and body, which must contain `expect`.
 */
export async function runEvidenceLoad(target: EvidenceLoadTarget, connections: number, total: number, expect: string): Promise<void> {
  const url = new URL(target.url);
  const body = Buffer.from(target.body);
  const request = Buffer.concat([
    Buffer.from(`POST ${target.path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`),
    body,
  ]);
  let sent = 0;
  const lane = async (): Promise<void> => {
    const socket = await open(url, target.caCert);
    try {
      const reader = new AnswerReader(socket);
      while (sent < total) {
        sent += 1;
        socket.write(request);
        const answer = await reader.next();
        if (!answer.startsWith('HTTP/1.1 200 ') || !answer.includes(expect)) {
          throw new Error(`unexpected answer: ${answer.slice(0, 300)}`);
        }
      }
    } finally {
      socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: connections }, lane));
}

function open(url: URL, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), ca }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Splits a keep-alive connection's bytes into answers (headers and a Content-Length body). */
class AnswerReader {
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (answer: string) => void; reject: (error: Error) => void } | undefined;

  constructor(socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.deliver();
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('the verifier closed the connection')));
  }

  next(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }

  private deliver(): void {
    if (this.waiting === undefined) {
      return;
    }
    const headerEnd = this.buffered.indexOf(HEADER_END);
    if (headerEnd < 0) {
      return;
    }
    const head = this.buffered.toString('latin1', 0, headerEnd);
    const length = CONTENT_LENGTH.exec(head)?.[1];
    if (length === undefined) {
      this.fail(new Error(`an answer without Content-Length: ${head}`));
      return;
    }
    const end = headerEnd + HEADER_END.length + Number(length);
    if (this.buffered.length < end) {
      return;
    }
    const answer = this.buffered.toString('utf8', 0, end);
    this.buffered = this.buffered.subarray(end);
    const { resolve } = this.waiting;
    this.waiting = undefined;
    resolve(answer);
  }

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
  }
}
