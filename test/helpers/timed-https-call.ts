import { request } from 'node:https';
import { connect } from 'node:tls';
import { watchEventLoopStalls } from './event-loop-stalls.js';

export interface TimedReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The longest the event loop of this process (the server's, in these tests) was blocked during the call (`watchEventLoopStalls`). */
  readonly worstStallMs: number;
}

/**
 * One HTTPS request to a service of this process, with the body sent as given, measuring how long the
 * event loop was blocked meanwhile: what an unauthenticated body costs everyone else.
 */
export async function timedHttpsCall(
  base: string,
  ca: string,
  method: string,
  urlPath: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<TimedReply> {
  // Made before measuring: flattening and copying a long string here is the client's cost, not the server's.
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const stalls = watchEventLoopStalls();
  let worstStallMs = 0;
  try {
    const reply = await new Promise<Omit<TimedReply, 'worstStallMs'>>((resolve, reject) => {
      const req = request(new URL(urlPath, base), { method, ca, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(bytes);
    });
    worstStallMs = stalls.stop();
    return { ...reply, worstStallMs };
  } finally {
    stalls.stop();
  }
}

/** `[0,0,…,0]` of about `bytes` bytes: the cheapest text for the most JSON values (two bytes each). */
export function numberArrayBody(bytes: number): string {
  const count = Math.floor(bytes / 2) - 1;
  return `[${'0,'.repeat(count - 1)}0]`;
}

/** What `sendChunkedUntilClosed` saw. */
export interface ChunkedSend {
  /** Everything the server answered, as latin1 text. */
  readonly reply: string;
  readonly closedByServer: boolean;
  /** Body bytes written before the server closed (or `maxBytes`). */
  readonly sent: number;
}

/**
 * Opens a TLS connection to `base`, sends `head` (a request line and headers announcing
 * `Transfer-Encoding: chunked`), then 1 MiB chunks 10 ms apart until the server closes the connection
 * or `maxBytes` are sent: how a test sees whether a refused body with no declared length is discarded
 * without bound or cut off.
 */
export async function sendChunkedUntilClosed(base: string, ca: string, head: string, maxBytes: number): Promise<ChunkedSend> {
  const url = new URL(base);
  const socket = connect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined);
  let closedByServer = false;
  socket.on('close', () => (closedByServer = true));
  socket.write(head);
  const chunk = `${(1024 * 1024).toString(16)}\r\n${'0,'.repeat(512 * 1024)}\r\n`;
  let sent = 0;
  for (; sent < maxBytes && !closedByServer; sent += 1024 * 1024) {
    socket.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const closed = closedByServer;
  socket.destroy();
  return { reply: Buffer.concat(received).toString('latin1'), closedByServer: closed, sent };
}
