import type { TrustLevel } from '../lib/identity/trust-level.js';

/**
 * The shape of ironlime's validated, frozen configuration as drivers and hooks read it. The class
 * that validates and builds it lives in `lib/config/ironlime-config.ts` and implements these types;
 * `docs/config.md` documents every field.
 */

/** The `keylime` section: the driver's service endpoints and the fail-closed switches. */
export interface KeylimeSettings {
  /** Fail the clean step when attestation fails (Ironic `[keylime] fail_clean_on_attestation_failure`). */
  readonly failCleanOnAttestationFailure: boolean;
  /** Fail the deploy step when attestation fails (Ironic `[keylime] fail_deploy_on_attestation_failure`). */
  readonly failDeployOnAttestationFailure: boolean;
  readonly verifierUrl?: string;
  readonly registrarUrl?: string;
  readonly tlsCaCert?: string;
  readonly tlsClientCert?: string;
  readonly tlsClientKey?: string;
  readonly statusTimeoutSeconds: number;
  readonly statusPollIntervalSeconds: number;
  /** Extra trusted EK CA folders of the keylime driver, added to the shipped vendor store (absent: none). */
  readonly extraEkCaDirs?: readonly string[];
}

/**
 * The `attestation` section: the trust level each gated step needs at least (docs/identity.md);
 * absent means the default (clean: `id-only`, deploy: `hardware-tpm`).
 */
export interface AttestationSettings {
  readonly minimumTrustLevel: {
    readonly clean?: TrustLevel;
    readonly deploy?: TrustLevel;
  };
}

/** The whole configuration. */
export interface IronlimeSettings {
  readonly dataDir: string;
  /** A `postgres://` URL; absent means the embedded PGlite database under `dataDir`. */
  readonly databaseUrl?: string;
  readonly enabledAttestationInterfaces: readonly string[];
  /** Absent means the first enabled interface. */
  readonly defaultAttestationInterface?: string;
  readonly keylime: KeylimeSettings;
  readonly attestation: AttestationSettings;
}
