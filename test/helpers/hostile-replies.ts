import type { ServerResponse } from 'node:http';

/**
 * Writes `status` with a chunked body (no content-length) of 128 chunks of 1 MiB, as fast as the
 * client reads; `sent.bytes` counts what the server got to write before the client gave up.
 */
export function floodChunked(res: ServerResponse, status: number, contentType: string, sent: { bytes: number }): void {
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  res.writeHead(status, { 'content-type': contentType });
  let chunks = 0;
  const pump = (): void => {
    while (chunks < 128) {
      chunks += 1;
      sent.bytes += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

/** Starts a 200 JSON reply with `first`, then one space every 300 ms until the client leaves. */
export function trickle(res: ServerResponse, first: string): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write(first);
  const timer = setInterval(() => res.write(' '), 300);
  res.on('close', () => clearInterval(timer));
}
