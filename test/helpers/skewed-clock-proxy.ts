import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ServiceTls } from '../../lib/pki/service-tls.js';

/** The reply fields a verifier dates with its own clock (unix seconds; 0 = never). */
const CLOCK_FIELDS = ['last_successful_attestation', 'last_received_quote', 'last_seen'] as const;

/**
 * An mTLS proxy in front of a real verifier that makes it look as if its clock ran `skewSeconds` ahead
 * of this host's (behind when negative): every time it dates — the reply's `Date` header and the
 * `results` fields it stamps — is moved by the skew; nothing else changes. It serves with a certificate
 * of `serverTls`'s CA and calls the verifier with `clientTls`.
 */
export class SkewedClockProxy {
  private server: Server | undefined;

  constructor(
    private readonly target: URL,
    private readonly serverTls: ServiceTls,
    private readonly clientTls: ServiceTls,
    public skewSeconds: number,
  ) {}

  /** Listens on a free loopback port; resolves to the proxy's URL. */
  async start(): Promise<string> {
    const server = createServer({ ca: this.serverTls.ca, cert: this.serverTls.cert, key: this.serverTls.key, requestCert: true }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const upstream = httpsRequest(
          { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: { ...req.headers, host: this.target.host }, ...this.clientTls },
          (reply) => {
            const body: Buffer[] = [];
            reply.on('data', (chunk: Buffer) => body.push(chunk));
            reply.on('end', () => {
              const text = this.skewedBody(Buffer.concat(body).toString('utf8'));
              const date = reply.headers.date === undefined ? undefined : new Date(Date.parse(reply.headers.date) + this.skewSeconds * 1000).toUTCString();
              res.sendDate = false;
              // The body is sent whole with its new length: a chunked upstream's framing must not come along.
              const { 'transfer-encoding': _framing, ...headers } = reply.headers;
              res.writeHead(reply.statusCode ?? 502, { ...headers, ...(date === undefined ? {} : { date }), 'content-length': Buffer.byteLength(text) });
              res.end(text);
            });
          },
        );
        upstream.on('error', () => res.destroy());
        upstream.end(Buffer.concat(chunks));
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A JSON reply with its dated `results` fields moved by the skew; any other body as it came. */
  private skewedBody(text: string): string {
    let reply: { results?: Record<string, unknown> };
    try {
      reply = JSON.parse(text) as { results?: Record<string, unknown> };
    } catch {
      return text;
    }
    const results = reply.results;
    if (results === undefined || results === null || typeof results !== 'object') return text;
    for (const field of CLOCK_FIELDS) {
      const value = results[field];
      if (typeof value === 'number' && value > 0) results[field] = value + this.skewSeconds;
    }
    return JSON.stringify(reply);
  }
}
