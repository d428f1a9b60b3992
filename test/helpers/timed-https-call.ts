import { request } from 'node:https';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface TimedReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The longest the event loop of this process (the server's, in these tests) was blocked during the call. */
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
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
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
    return { ...reply, worstStallMs: delay.max / 1e6 };
  } finally {
    delay.disable();
  }
}

/** `[0,0,…,0]` of about `bytes` bytes: the cheapest text for the most JSON values (two bytes each). */
export function numberArrayBody(bytes: number): string {
  const count = Math.floor(bytes / 2) - 1;
  return `[${'0,'.repeat(count - 1)}0]`;
}
