import type { KeylimeService } from './keylime-service.js';

export interface ListenOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Receives the "<name> listening on <url>" line (a CLI passes a stdout writer); the logger always gets it. */
  readonly announce?: (line: string) => void;
}

export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
  /** `https://127.0.0.1:8891` (IPv6 hosts in brackets). */
  readonly url: string;
}

/** Starts `service` listening and reports where. */
export async function listenService(service: KeylimeService, options: ListenOptions): Promise<ListeningAddress> {
  const host = options.host ?? '127.0.0.1';
  await service.app.listen({ host, port: options.port });
  const address = service.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const scheme = service.tls === undefined ? 'http' : 'https';
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const line = `${service.name} listening on ${url}`;
  service.app.log.info({ url }, line);
  options.announce?.(line);
  return { host, port, url };
}

/** Anything with an async `close()`: services, database handles, pollers. */
export interface Closeable {
  close(): Promise<void>;
}

export interface RunUntilSignalOptions {
  /** Default SIGTERM and SIGINT. */
  readonly signals?: readonly NodeJS.Signals[];
  /** Called with errors from `close()`; the others are still closed. */
  readonly onCloseError?: (error: unknown) => void;
}

/**
 * For CLI commands that run services: waits for the first of `signals`, then closes `closeables` in
 * order (each one even if an earlier one failed) and resolves with the signal's name. Its signal
 * handlers are removed again, so a second signal behaves as Node's default (ends the process).
 */
export function runUntilSignal(closeables: readonly Closeable[], options: RunUntilSignalOptions = {}): Promise<NodeJS.Signals> {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      for (const s of signals) {
        process.removeListener(s, onSignal);
      }
      void closeAll(closeables, options.onCloseError).then(() => resolve(signal));
    };
    for (const s of signals) {
      process.on(s, onSignal);
    }
  });
}

async function closeAll(closeables: readonly Closeable[], onError: ((error: unknown) => void) | undefined): Promise<void> {
  for (const closeable of closeables) {
    try {
      await closeable.close();
    } catch (error) {
      onError?.(error);
    }
  }
}
