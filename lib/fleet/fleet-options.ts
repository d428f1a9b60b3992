import type { Logger } from 'pino';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { EkAlgorithm } from '../tpm-access/tpm-port.js';
import type { VerifierConfigInput } from '../verifier/verifier-config.js';

/** Most simulated agents one fleet process serves (each is an HTTPS listener with its own TPM). */
export const MAX_FLEET_AGENTS = 5000;

/** What a fleet is started with. Only `agents` and `dataDir` are required. */
export interface FleetOptions {
  readonly agents: number;
  /**
   * The services' data dir: its CA (`<dataDir>/ca`) issues the tenant's client certificate and is the
   * CA the agents trust; the fleet keeps its own files in `<dataDir>/fleet`. Point it at the data dir
   * of external services (as for `ironlime tenant`), or let the fleet start its own there.
   */
  readonly dataDir: string;
  /** Registrar registration URL (plain HTTP, e.g. `http://127.0.0.1:8890`); absent = start one in-process. */
  readonly registrarUrl?: string;
  /** Registrar TLS (admin) URL; default: the registration URL's host on port 8891. */
  readonly registrarTlsUrl?: string;
  /** Verifier URL (e.g. `https://127.0.0.1:8881`); absent = start one in-process. */
  readonly verifierUrl?: string;
  /** PostgreSQL URL for in-process services; absent = embedded PGlite in the data dir. */
  readonly databaseUrl?: string;
  /** PostgreSQL schema for in-process services (must exist). */
  readonly databaseSchema?: string;
  /** Seconds between rounds of an in-process verifier (default 2, Keylime's). */
  readonly quoteInterval?: number;
  /** Further settings of an in-process verifier. */
  readonly verifierConfig?: Omit<VerifierConfigInput, 'dataDir' | 'quoteInterval'>;
  /** Agent i listens on `basePort + i`; 0 (default) = any free ports. */
  readonly basePort?: number;
  /** Default `ecc` (~13 ms per TPM, no EK certificate: the EK checks run in `off` mode); `rsa` takes ~1 s per TPM. */
  readonly ekAlgorithm?: EkAlgorithm;
  /**
   * AK family, default the EK's: `rsa` gives RSA-2048 AKs signing with RSASSA (Keylime's default signing
   * scheme; ~0.2 s more per TPM to make, ~0.35 ms per quote to sign), `ecc` P-256 AKs signing with ECDSA.
   */
  readonly akAlgorithm?: EkAlgorithm;
  /** Known-good IMA entries per minute per agent (default 3; 0 = logs do not grow). */
  readonly imaEntriesPerMinute?: number;
  /** Agents started / enrolled at once (default 8). */
  readonly startConcurrency?: number;
  /** On close, delete the agents from the verifier and the registrar (default true). */
  readonly deregisterOnClose?: boolean;
  /** Default silent. */
  readonly logger?: Logger;
  /** Receives progress lines ("120/1000 agents registered"). */
  readonly progress?: (line: string) => void;
  /** Called each time one more agent is registered and enrolled (a terminal progress bar). */
  readonly enrolled?: (done: number, total: number) => void;
  /**
   * Aborting it during the start (SIGINT to `ironlime fleet` or the benchmark) starts no further agent:
   * those in flight finish, everything started is stopped, and the start rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
}

/** Checks the numbers of `options`. @throws InvalidParameterValue naming the option. */
export function checkFleetOptions(options: FleetOptions): void {
  if (!Number.isInteger(options.agents) || options.agents < 1 || options.agents > MAX_FLEET_AGENTS) {
    throw new InvalidParameterValue('agents', `must be an integer from 1 to ${MAX_FLEET_AGENTS}`);
  }
  if (typeof options.dataDir !== 'string' || options.dataDir === '') {
    throw new InvalidParameterValue('dataDir', 'must be a folder path');
  }
  const basePort = options.basePort ?? 0;
  if (!Number.isInteger(basePort) || basePort < 0 || (basePort > 0 && (basePort < 1024 || basePort + options.agents - 1 > 65535))) {
    throw new InvalidParameterValue('basePort', `must be 0 (any free port) or a port from 1024 such that basePort + ${options.agents - 1} <= 65535`);
  }
  const interval = options.quoteInterval ?? 2;
  if (!Number.isFinite(interval) || interval < 0 || interval > 86400) {
    throw new InvalidParameterValue('quoteInterval', 'must be a number of seconds from 0 to 86400');
  }
  const rate = options.imaEntriesPerMinute ?? 3;
  if (!Number.isFinite(rate) || rate < 0 || rate > 600) {
    throw new InvalidParameterValue('imaEntriesPerMinute', 'must be a number from 0 to 600');
  }
  const concurrency = options.startConcurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new InvalidParameterValue('startConcurrency', 'must be an integer from 1 to 256');
  }
  for (const name of ['ekAlgorithm', 'akAlgorithm'] as const) {
    const family = options[name];
    if (family !== undefined && family !== 'ecc' && family !== 'rsa') {
      throw new InvalidParameterValue(name, 'must be ecc or rsa');
    }
  }
}

/** The registrar's TLS URL next to a registration URL: same host, Keylime's TLS port 8891. */
export function defaultRegistrarTlsUrl(registrationUrl: string): string {
  const url = new URL(registrationUrl);
  return `https://${url.host.replace(/:\d+$/, '')}:8891`;
}
