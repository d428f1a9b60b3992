import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A revocation webhook on a local port that keeps every message the verifier announces to it. */
export interface RevocationWebhook {
  readonly url: string;
  /** The `msg` of each envelope received, parsed, in arrival order. */
  readonly announced: readonly Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startRevocationWebhook(): Promise<RevocationWebhook> {
  const announced: Record<string, unknown>[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      announced.push(JSON.parse((JSON.parse(body) as { msg: string }).msg) as Record<string, unknown>);
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoked`,
    announced,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The verifier's client keeps its connection alive: without this, close would wait for it to time out.
        server.closeAllConnections();
      }),
  };
}
