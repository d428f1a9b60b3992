import { connect, type TLSSocket } from 'node:tls';
import { Http1ResponseParser, type Http1Response } from '../lib/http/http1-response-parser.js';

/** Where and what `runEvidenceLoad` sends. */
export interface EvidenceLoadTarget {
  readonly url: string;
  readonly caCert: string;
  readonly path: string;
  /** Sent in turn, one request each. */
  readonly bodies: readonly string[];
}

/** Largest answer read (an evidence reply is a few KiB). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * The evidence bench's load generator, made cheap so that the verifier, not the client, is measured:
 * `connections` keep-alive TLS connections, each sending one request (bytes built once per body, the
 * bodies taken in turn) as soon as the previous answer has arrived, until `total` have been answered. Each answer must be a 200 whose
 * body contains `expect`.
 */
export async function runEvidenceLoad(target: EvidenceLoadTarget, connections: number, total: number, expect: string): Promise<void> {
  const url = new URL(target.url);
  const requests = target.bodies.map((text) => {
    const body = Buffer.from(text);
    return Buffer.concat([
      Buffer.from(`POST ${target.path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`),
      body,
    ]);
  });
  let sent = 0;
  const lane = async (): Promise<void> => {
    const socket = await open(url, target.caCert);
    try {
      const reader = new AnswerReader(socket);
      while (sent < total) {
        socket.write(requests[sent % requests.length] as Buffer);
        sent += 1;
        const answer = await reader.next();
        const text = answer.body.toString('utf8');
        if (answer.status !== 200 || !text.includes(expect)) {
          throw new Error(`unexpected answer: ${answer.status} ${text.slice(0, 300)}`);
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

/**
 * Reads a keep-alive connection's answers one at a time with the thin client's HTTP/1.1 parser (one
 * request is outstanding at a time, so an answer never shares bytes with the next).
 */
class AnswerReader {
  private parser = new Http1ResponseParser(MAX_ANSWER_BYTES);
  private answered: Http1Response | undefined;
  private failure: Error | undefined;
  private waiting: { resolve: (answer: Http1Response) => void; reject: (error: Error) => void } | undefined;

  constructor(socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        const answer = this.parser.feed(chunk);
        if (answer !== undefined) {
          this.parser = new Http1ResponseParser(MAX_ANSWER_BYTES);
          this.answered = answer;
        }
      } catch (error) {
        this.failure = error as Error;
      }
      this.deliver();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.deliver();
    });
    socket.on('close', () => {
      this.failure ??= new Error('the verifier closed the connection');
      this.deliver();
    });
  }

  next(): Promise<Http1Response> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }

  private deliver(): void {
    const waiting = this.waiting;
    if (waiting === undefined) {
      return;
    }
    if (this.answered !== undefined) {
      const answer = this.answered;
      this.answered = undefined;
      this.waiting = undefined;
      waiting.resolve(answer);
    } else if (this.failure !== undefined) {
      this.waiting = undefined;
      waiting.reject(this.failure);
    }
  }
}
