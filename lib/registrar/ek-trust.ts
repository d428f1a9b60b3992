import type { Logger } from 'pino';
import { defaultCertStoreDir, loadCertStore } from '../pki/cert-store-files.js';
import type { CertStore } from '../tpm/cert-store.js';
import { verifyEkCertificate } from '../tpm/ek-certificate.js';
import { CertificateParseError } from '../tpm/tpm-errors.js';
import { InvalidConfig } from '../../interfaces/errors.js';
import type { EkCheckMode } from './registrar-config.js';
import { EkCertificateUntrusted } from './registrar-errors.js';
import type { CheckedRegistration } from './registration-check.js';

/**
 * The registrar's EK certificate policy (stricter than Keylime, whose registrar leaves this to the
 * tenant — spec §5.3). `require`: a registration must carry an EK certificate that chains, possibly
 * through the intermediates sent with it, to a certificate of the store; `warn`: the same check, but
 * a failure is only logged; `off`: no check. The store is the shipped vendor store
 * (`fixtures/tpm_cert_store`) plus every `ekCaDirs` folder.
 */
export class EkTrust {
  constructor(
    readonly mode: EkCheckMode,
    private readonly store: CertStore,
    private readonly log: Logger,
  ) {}

  /**
   * Loads the stores once, at boot. @throws InvalidConfig naming the folder that cannot be read.
   */
  static load(mode: EkCheckMode, ekCaDirs: readonly string[], log: Logger): EkTrust {
    if (mode === 'off') {
      return new EkTrust(mode, { entries: [] }, log);
    }
    const stores = [defaultCertStoreDir(), ...ekCaDirs].map((dir) => {
      let store: CertStore;
      try {
        store = loadCertStore(dir);
      } catch (cause) {
        const detail = cause instanceof Error ? `: ${cause.message}` : '';
        throw new InvalidConfig('registrar.ekCaDirs', `cannot load EK CA certificates from ${dir}${detail}`, { cause });
      }
      for (const file of store.skipped ?? []) {
        log.info({ dir, file: file.name, reason: file.reason }, 'EK CA folder: file skipped, it holds no certificate');
      }
      return store;
    });
    return new EkTrust(mode, { entries: stores.flatMap((store) => store.entries) }, log);
  }

  /** Number of trusted CA certificates (for the start-up banner). */
  get size(): number {
    return this.store.entries.length;
  }

  /**
   * True when the EK certificate chains to the store: only then does a `tpm` registration count as
   * `hardware-tpm` (docs/identity.md); `off` checks nothing and so vouches for nothing.
   *
   * @throws EkCertificateUntrusted under `require` when the certificate is missing or untrusted.
   */
  judge(agentId: string, registration: CheckedRegistration): boolean {
    if (this.mode === 'off') {
      return false;
    }
    const problem = this.problem(registration);
    if (problem === undefined) {
      return true;
    }
    if (this.mode === 'require') {
      throw new EkCertificateUntrusted(`EK certificate of agent '${agentId}' refused: ${problem}`);
    }
    this.log.warn({ agentId, problem }, 'EK certificate not trusted; accepted because ek-check is "warn"');
    return false;
  }

  private problem(registration: CheckedRegistration): string | undefined {
    if (registration.ekCertDer === null) {
      return 'no EK certificate was sent (ekcert)';
    }
    try {
      const verdict = verifyEkCertificate(registration.ekCertDer, this.store, {
        intermediates: registration.ekCertChain,
      });
      return verdict.valid ? undefined : verdict.reason;
    } catch (error) {
      // The EK certificate was read at the registration check, so this is a certificate the agent sent
      // with it: the agent's chain, judged under the mode (fail closed), not malformed input.
      if (error instanceof CertificateParseError) {
        return `a certificate sent with the EK certificate cannot be read: ${error.detail}`;
      }
      throw error;
    }
  }
}
