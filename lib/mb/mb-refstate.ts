import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/**
 * A measured-boot reference state in Keylime's `example` policy format (keylime/mba/elchecking/
 * example.py; spec §7.8). Hex values are `0x` + lowercase hex of whole bytes; a digest is `{alg: hex}`; a key is
 * `{SignatureOwner: guid, SignatureData: hex}`. `option_roms` and `firmware_apps` are ironlime
 * extensions that Keylime's `example` policy ignores (see docs/measured-boot.md).
 */
export interface MbRefstate {
  /** Default true, as in Keylime. */
  readonly has_secureboot: boolean;
  /** Allowed firmware: one entry must match the S-CRTM version event and the firmware code events. */
  readonly scrtm_and_bios: readonly ScrtmAndBios[];
  readonly pk: readonly RefstateKey[];
  readonly kek: readonly RefstateKey[];
  readonly db: readonly RefstateKey[];
  /** Entries the log's dbx must contain (a superset check: revocations may only grow). */
  readonly dbx: readonly RefstateKey[];
  readonly mokdig: readonly RefstateDigest[];
  readonly mokxdig: readonly RefstateDigest[];
  /** Allowed boot chains; one must match. */
  readonly kernels: readonly RefstateKernel[];
  /** ironlime extension: when present, every code measurement in PCR 2 (option ROMs, drivers) must be listed. */
  readonly option_roms?: readonly RefstateDigest[];
  /** ironlime extension: firmware-internal EFI applications (boot menu, …) allowed in PCR 4 before the boot chain. */
  readonly firmware_apps?: readonly RefstateDigest[];
}

export type RefstateDigest = Readonly<Record<string, string>>;

export interface ScrtmAndBios {
  /** Absent means the firmware logs no EV_S_CRTM_VERSION event (an ironlime relaxation of Keylime's schema). */
  readonly scrtm?: RefstateDigest;
  readonly platform_firmware: readonly RefstateDigest[];
}

export interface RefstateKey {
  readonly SignatureOwner: string;
  readonly SignatureData: string;
}

export interface RefstateKernel {
  readonly shim_authcode_sha256: string;
  readonly grub_authcode_sha256: string;
  /** Required with Secure Boot. */
  readonly kernel_authcode_sha256?: string;
  /** Required without Secure Boot. */
  readonly vmlinuz_plain_sha256?: string;
  /**
   * Required by Keylime. ironlime also accepts it absent, meaning the boot loads no initrd (GRUB
   * `initrdless` boots, COS): the policy then requires that no initrd is measured.
   */
  readonly initrd_plain_sha256?: string;
  /** A regular expression the whole command line (after `kernel_cmdline: `) must match. */
  readonly kernel_cmdline: string;
}

/** A refstate that is not valid JSON or not a valid `example` refstate. */
export class MbRefstateError extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_MB_REFSTATE_INVALID', `measured-boot refstate: ${detail}`, options);
  }
}
