import { InvalidConfig } from '../../interfaces/errors.js';
import type { KeylimeService } from './keylime-service.js';

export interface ListenOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Receives the "<name> listening on <url>" line (a CLI passes a stdout writer); the logger always gets it. */
  readonly announce?: (line: string) => void;
  /** The setting that chose `port`, named when the port cannot be used (default `port`, as `--port`). */
  readonly portSetting?: string;
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
  try {
    await service.app.listen({ host, port: options.port });
  } catch (error) {
    throw listenRefusal(error, host, options.port, options.portSetting ?? 'port') ?? error;
  }
  const address = service.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const scheme = service.tls === undefined ? 'http' : 'https';
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const line = `${service.name} listening on ${url}`;
  service.app.log.info({ url }, line);
  options.announce?.(line);
  return { host, port, url };
}

/** A port the system refuses (taken, or privileged) as a setting to change; other failures are left as they are. */
function listenRefusal(error: unknown, host: string, port: number, setting: string): InvalidConfig | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const option = `--${setting.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
  if (code === 'EADDRINUSE') {
    return new InvalidConfig(setting, `address ${address} is already in use: another service runs there; choose another ${option}`, { cause: error });
  }
  if (code === 'EACCES') {
    return new InvalidConfig(setting, `address ${address} may not be used by this user (ports below 1024 need privileges); choose another ${option}`, { cause: error });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new InvalidConfig('host', `address ${address} is not one of this machine's addresses; choose another --host`, { cause: error });
  }
  return undefined;
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
