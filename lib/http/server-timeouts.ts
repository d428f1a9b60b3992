import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { InvalidConfig } from '../../interfaces/errors.js';

/**
 * How long a client may hold a connection without progress (issue 11 item 6: idle and slow
 * connections were held forever). All in milliseconds.
 * - `headersMs`: from the connection (or the end of the previous request) until the request's
 *   headers are complete (Node's `server.headersTimeout`);
 * - `requestMs`: for the whole request, body included (Node's `server.requestTimeout`); sized for a
 *   policy of tens of MiB on a slow link;
 * - `keepAliveMs`: an idle keep-alive connection between requests (`server.keepAliveTimeout`);
 * - `idleMs`: a socket with no traffic at all (`server.setTimeout`, fastify's `connectionTimeout`),
 *   which also covers a TLS handshake that never finishes.
 * Node checks the first two every `connectionsCheckingInterval` (default 30 s, which would let a slow
 * client live up to 30 s longer than its bound), so it is set to a quarter of `headersMs` (≤ 1 s).
 * A connection that never sends a request is closed after `headersMs` (`closeSilentConnections`), and
 * a TLS handshake must finish within `headersMs` too (`handshakeTimeout`).
 */
export interface ServerTimeouts {
  readonly headersMs: number;
  readonly requestMs: number;
  readonly keepAliveMs: number;
  readonly idleMs: number;
}

export const DEFAULT_SERVER_TIMEOUTS: ServerTimeouts = Object.freeze({
  headersMs: 10_000,
  requestMs: 120_000,
  keepAliveMs: 30_000,
  idleMs: 60_000,
});

/** Node options for `http(s).createServer` that fastify does not set itself. */
export interface NodeServerTimeoutOptions {
  readonly headersTimeout: number;
  readonly handshakeTimeout: number;
  readonly requestTimeout: number;
  readonly connectionsCheckingInterval: number;
}

/** Checks `timeouts` (all positive integers, headers ≤ request) and fills in the defaults. @throws InvalidConfig */
export function checkServerTimeouts(timeouts: Partial<ServerTimeouts> | undefined): ServerTimeouts {
  const merged = { ...DEFAULT_SERVER_TIMEOUTS, ...timeouts };
  for (const [field, value] of Object.entries(merged)) {
    if (!Number.isInteger(value) || value < 100 || value > 3_600_000) {
      throw new InvalidConfig(`timeouts.${field}`, 'must be an integer from 100 to 3600000 (milliseconds)');
    }
  }
  if (merged.headersMs > merged.requestMs) {
    throw new InvalidConfig('timeouts.headersMs', 'must not exceed timeouts.requestMs');
  }
  return Object.freeze(merged);
}

export function nodeServerTimeoutOptions(timeouts: ServerTimeouts): NodeServerTimeoutOptions {
  return {
    headersTimeout: timeouts.headersMs,
    handshakeTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeouts.headersMs / 4))),
  };
}

/** Where `closeSilentConnections` keeps a connection's timer. */
const SILENCE_TIMER = Symbol('silence timer');

type TimedSocket = Socket & { [SILENCE_TIMER]?: NodeJS.Timeout };

/** The part of a Node HTTP(S) server `closeSilentConnections` needs. */
interface ConnectionEvents {
  on(event: 'connection' | 'secureConnection', listener: (socket: Socket) => void): unknown;
  on(event: 'request', listener: (request: IncomingMessage) => void): unknown;
}

/**
 * Destroys a connection that sends no request within `ms` of being opened (of its TLS handshake
 * finishing, for HTTPS). Node's `headersTimeout` only runs once the first byte of a request has
 * arrived and `server.setTimeout` never fires on a socket the HTTP parser consumes natively, so
 * without this a client could hold connections open forever by sending nothing.
 */
export function closeSilentConnections(server: ConnectionEvents, ms: number, secure: boolean): void {
  server.on(secure ? 'secureConnection' : 'connection', (socket) => {
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    (socket as TimedSocket)[SILENCE_TIMER] = timer;
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('request', (request) => {
    // An HTTP/2 request's `socket` is a proxy of its session's socket, which reads and writes the
    // socket's own properties: a timer kept on the socket is found from both protocols' requests.
    const socket = request.socket as TimedSocket;
    clearTimeout(socket[SILENCE_TIMER]);
  });
}
