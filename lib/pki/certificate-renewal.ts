import { X509Certificate } from 'node:crypto';
import type { CertificateType } from './certificate-authority.js';
import { caExpiryWarning, validityOf } from './certificate-validity.js';
import { RENEW_MARGIN_MS, renewalDue, renewIssuedTls, type ServiceTls, type ServiceTlsOptions } from './service-tls.js';

/** The longest wait between two looks at the certificates. */
const MAX_CHECK_INTERVAL_MS = 60 * 60 * 1000;

/** One certificate a running service renews. */
export interface RenewedCertificate {
  /** File stem and CN, as given to `loadOrCreateServiceTls` / `loadOrCreateClientTls` at start. */
  readonly serviceName: string;
  readonly type: CertificateType;
  readonly sans?: readonly string[];
  /** What the service started with. */
  readonly initial: ServiceTls;
  /** Swaps a renewed pair into the running server or client (new connections use it). */
  readonly use: (tls: ServiceTls) => void;
}

export interface CertificateRenewalLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** Tests of renewal: a short margin and lifetime (given to the start's `loadOrCreate…Tls` too). */
export type RenewalTiming = Pick<ServiceTlsOptions, 'renewMarginMs' | 'validityMs'>;

/** A certificate the operator gave in a file: never reissued, only warned about near its end. */
export interface OperatorCertificate {
  /** Names it in the warning: the setting and the file. */
  readonly what: string;
  readonly cert: string;
}

export interface CertificateRenewalOptions extends RenewalTiming {
  readonly dataDir: string;
  readonly certificates: readonly RenewedCertificate[];
  readonly operatorCertificates?: readonly OperatorCertificate[];
  readonly log: CertificateRenewalLog;
}

/**
 * Renews a service's certificates from its CA while it runs: a timer (not keeping the process alive)
 * looks at them every hour, or more often for a short margin, and one with less than the margin left
 * (`RENEW_MARGIN_MS`, `renewalDue`) is reissued the way a start would issue it (same files, same
 * lock, the pair another process renewed reused) and handed to `use`. A failed renewal is logged and
 * tried again at the next look; the old certificate stays in use meanwhile. A CA near its end is only
 * warned about (once): a new CA is the operator's to make. So is a certificate the operator gave in a
 * file (`operatorCertificates`): warned about once, at start or when less than the margin is left.
 */
export class CertificateRenewal {
  private readonly current: ServiceTls[];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** The start warned of a CA near its end already. */
  private caWarned: boolean;
  private readonly operatorWarned = new Set<OperatorCertificate>();
  /** Aborted by `close`: a renewal waiting on another process's issue lock stops waiting. */
  private readonly closing = new AbortController();

  constructor(private readonly options: CertificateRenewalOptions) {
    this.current = options.certificates.map((certificate) => certificate.initial);
    this.caWarned = this.current.some((tls) => caWarning(tls) !== undefined);
  }

  start(): void {
    this.warnOfOperatorCertificates();
    const intervalMs = Math.min(MAX_CHECK_INTERVAL_MS, Math.max(1000, Math.floor(this.marginMs() / 4)));
    this.timer = setInterval(() => {
      this.running ??= this.check().finally(() => {
        this.running = undefined;
      });
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a look in progress (not for another process's issue lock). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.closing.abort(new Error('certificate renewal closed'));
    await this.running;
  }

  private marginMs(): number {
    return this.options.renewMarginMs ?? RENEW_MARGIN_MS;
  }

  /** One look at every certificate; never throws (a failure is logged and the next look tries again). */
  private async check(): Promise<void> {
    this.warnOfOperatorCertificates();
    for (const [index, certificate] of this.options.certificates.entries()) {
      try {
        await this.renewIfDue(index, certificate);
      } catch (error) {
        if (this.closing.signal.aborted) return;
        this.options.log.warn({ certificate: certificate.serviceName, err: error }, 'certificate renewal failed; the current certificate stays in use and renewal is tried again later');
      }
    }
  }

  private async renewIfDue(index: number, certificate: RenewedCertificate): Promise<void> {
    const current = this.current[index] as ServiceTls;
    this.warnOfCa(current);
    if (!renewalDue(current, Date.now(), this.marginMs()) || this.timer === undefined) return;
    const renewed = await renewIssuedTls(
      {
        dataDir: this.options.dataDir,
        serviceName: certificate.serviceName,
        ...(certificate.sans === undefined ? {} : { sans: certificate.sans }),
        ...(this.options.renewMarginMs === undefined ? {} : { renewMarginMs: this.options.renewMarginMs }),
        ...(this.options.validityMs === undefined ? {} : { validityMs: this.options.validityMs }),
        signal: this.closing.signal,
      },
      certificate.type,
    );
    certificate.use(renewed);
    this.current[index] = renewed;
    this.options.log.info({ certificate: certificate.serviceName, notAfter: notAfterOf(renewed.cert) }, 'certificate renewed');
  }

  private warnOfOperatorCertificates(): void {
    for (const given of this.options.operatorCertificates ?? []) {
      if (this.operatorWarned.has(given)) continue;
      const notAfterMs = notAfterMsOf(given.cert);
      // An unreadable one is left to the client using it, which refuses it.
      if (Number.isNaN(notAfterMs) || notAfterMs - Date.now() >= this.marginMs()) continue;
      this.operatorWarned.add(given);
      this.options.log.warn(
        { certificate: given.what, notAfter: new Date(notAfterMs).toISOString() },
        `${given.what} expires on ${new Date(notAfterMs).toISOString()}: it was given, not issued here, so it is not renewed; replace it and restart before then`,
      );
    }
  }

  private warnOfCa(tls: ServiceTls): void {
    if (this.caWarned) return;
    const warning = caWarning(tls);
    if (warning === undefined) return;
    this.caWarned = true;
    this.options.log.warn({}, warning);
  }
}

function caWarning(tls: ServiceTls): string | undefined {
  return caExpiryWarning('the CA', validityOf(new X509Certificate(tls.ca)), Date.now());
}

function notAfterOf(certPem: string): string {
  return new Date(notAfterMsOf(certPem)).toISOString();
}

/** `notAfter` in Unix milliseconds; NaN for text that is no certificate. */
function notAfterMsOf(certPem: string): number {
  try {
    return validityOf(new X509Certificate(certPem)).notAfterMs;
  } catch {
    return Number.NaN;
  }
}
