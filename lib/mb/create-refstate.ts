import { findLogBank, untrustedBootEvents, type BootEvent } from './boot-events.js';
import { kernelCommandLines, secureBootState } from './boot-state.js';
import {
  bootApplications,
  firmwareCode,
  initrdEvents,
  isFirmwareVolumeApp,
  mokEvents,
  pcr2Code,
  scrtmEvents,
  secureBootKeys,
  vmlinuzEvents,
} from './internal/boot-components.js';
import type { ParsedEventLog } from './event-log.js';
import { EV_EFI_ACTION } from './internal/event-types.js';
import { withoutTrailingNuls } from './internal/trailing-nuls.js';
import { evaluateMbPolicy } from './evaluate-mb-policy.js';
import { EXAMPLE_POLICY_PCRS } from './internal/policy-event-rules.js';
import { buildVerifiedEventLog } from './internal/verified-event-log.js';
import { MbRefstateError, type MbRefstate, type RefstateDigest, type RefstateKey } from './mb-refstate.js';

export interface CreateRefstateOptions {
  /**
   * Allow a log whose Secure Boot is off (Keylime's `-i`/`--without-secureboot`): the refstate then
   * pins the kernel by its plain digest (`vmlinuz_plain_sha256`) instead of its Authenticode hash.
   */
  readonly withoutSecureBoot?: boolean;
}

/**
 * Builds a refstate in Keylime's `example` format from a known-good log, the way Keylime's
 * `create_mb_policy.py` does: Secure Boot state, S-CRTM and platform firmware digests, PK/KEK/db/dbx,
 * MokList/MokListX digests, and the boot chain (shim, GRUB, kernel or vmlinuz, initrd, kernel command
 * line as an escaped regex). It also records the ironlime extensions `option_roms` (PCR 2 code) and
 * `firmware_apps` (firmware-volume EFI applications in PCR 4, which Keylime skips). All digests are
 * SHA-256, as the `example` policy expects.
 *
 * The log is trusted as given (it is the reference): use a log from a machine known to be good.
 * Throws `MbRefstateError` when the log has no SHA-256 bank, when Secure Boot is off and
 * `withoutSecureBoot` is not set, when its Secure Boot state cannot be read, when a boot component
 * the refstate needs (shim, GRUB, kernel, command line) is not in the log, or when the log could not
 * pass the policy with the refstate made from it (an event the policy does not expect): every
 * refstate this returns passes `evaluateMbPolicy` on the same log.
 */
export function createRefstate(log: ParsedEventLog, options: CreateRefstateOptions = {}): MbRefstate {
  const bank = findLogBank(log, 'sha256');
  if (bank === undefined) {
    throw new MbRefstateError('the log has no sha256 bank; the example policy compares SHA-256 digests');
  }
  const events = untrustedBootEvents(log, bank);
  const sb = secureBootState(events);
  if (sb.enabled === null) {
    throw new MbRefstateError(`cannot create a refstate: Secure Boot state unknown (${sb.reason ?? ''})`);
  }
  if (!sb.enabled && options.withoutSecureBoot !== true) {
    throw new MbRefstateError('the log has Secure Boot disabled; set withoutSecureBoot (CLI: --without-secureboot) to create a refstate without it');
  }
  const refstate = buildRefstate(events, sb.enabled);
  const selfCheck = evaluateMbPolicy(buildVerifiedEventLog(log, bank, EXAMPLE_POLICY_PCRS, []), refstate);
  if (!selfCheck.passed) {
    const reasons = selfCheck.findings.map((f) => `${f.component}: ${f.reason}`).join('; ');
    throw new MbRefstateError(`this log cannot pass the example policy, so no refstate was made: ${reasons}`);
  }
  return refstate;
}

function buildRefstate(events: readonly BootEvent[], secureBoot: boolean): MbRefstate {
  const keys = secureBootKeys(events);
  const scrtm = scrtmEvents(events);
  const mok = mokEvents(events);
  const isPlatformApp = platformAppTest(events);
  const apps = bootApplications(events);
  return {
    has_secureboot: secureBoot,
    scrtm_and_bios: [
      {
        ...(scrtm[0] === undefined ? {} : { scrtm: sha256(scrtm[0]) }),
        platform_firmware: firmwareCode(events).map(sha256),
      },
    ],
    pk: keyList(keys.PK),
    kek: keyList(keys.KEK),
    db: keyList(keys.db),
    dbx: keyList(keys.dbx),
    mokdig: mok.MokList.map(sha256),
    mokxdig: mok.MokListX.map(sha256),
    kernels: [kernelEntry(events, apps.filter((e) => !isPlatformApp(e)), secureBoot)],
    option_roms: pcr2Code(events).map(sha256),
    firmware_apps: apps.filter(isPlatformApp).map(sha256),
  };
}

/** The boot chain: `apps` are the PCR 4 applications that are not the platform's. */
function kernelEntry(events: readonly BootEvent[], apps: readonly BootEvent[], secureBoot: boolean) {
  const expected = secureBoot ? '3 or 4 (shim, GRUB, kernel)' : '2 (shim, GRUB)';
  if (secureBoot ? apps.length !== 3 && apps.length !== 4 : apps.length !== 2) {
    throw new MbRefstateError(`the log loads ${apps.length} EFI application(s) in PCR 4, expected ${expected}`);
  }
  const [shim, grub, kernel] = apps as [BootEvent, BootEvent, BootEvent | undefined];
  const initrd = initrdEvents(events)[0];
  const cmdline = kernelCommandLines(events)[0];
  if (cmdline === undefined) {
    throw new MbRefstateError('the log has no kernel command line (EV_IPL "kernel_cmdline: " or "grub_kernel_cmdline " in PCR 8)');
  }
  const entry = {
    shim_authcode_sha256: hex(shim.digest),
    grub_authcode_sha256: hex(grub.digest),
    ...(initrd === undefined ? {} : { initrd_plain_sha256: hex(initrd.digest) }),
    kernel_cmdline: pythonReEscape(cmdline.text),
  };
  const vmlinuz = vmlinuzEvents(events)[0];
  if (vmlinuz === undefined) {
    throw new MbRefstateError('the log has no kernel image (EV_IPL in PCR 9 naming a /vmlinuz file)');
  }
  if (secureBoot && kernel !== undefined) {
    return { ...entry, kernel_authcode_sha256: hex(kernel.digest) };
  }
  return { ...entry, vmlinuz_plain_sha256: hex(vmlinuz.digest) };
}

/**
 * An application of the platform rather than of the boot chain: loaded from a firmware volume
 * (Keylime's pattern), or started by the boot manager before it calls the first boot option (PFP
 * §8.2.4: "Calling EFI Application from Boot Option" precedes the boot option's application; Dell's
 * System Services in go-tpm-tools' gdc-host.bin). Decided from the device path and the order of the
 * golden log, which only refstate creation trusts; the policy recognises these by digest. The call
 * is looked up once, so the test costs the same for every application.
 */
function platformAppTest(events: readonly BootEvent[]): (app: BootEvent) => boolean {
  const call = events.find((e) => e.pcrIndex === 4 && e.untrustedType === EV_EFI_ACTION && e.content.kind === 'text' && withoutTrailingNuls(e.content.text) === CALLING_BOOT_OPTION);
  return (app) => isFirmwareVolumeApp(app) || (call !== undefined && app.sequence < call.sequence);
}

const CALLING_BOOT_OPTION = 'Calling EFI Application from Boot Option';

function keyList(lists: readonly { signatureOwner: string; signatureData: Uint8Array }[] | null): RefstateKey[] {
  return (lists ?? []).map((s) => ({ SignatureOwner: s.signatureOwner, SignatureData: hex(s.signatureData) }));
}

function sha256(event: BootEvent): RefstateDigest {
  return { sha256: hex(event.digest) };
}

function hex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

/**
 * Python's `re.escape` (3.7+): a backslash before each of `()[]{}?*+-|^$\.&~# \t\n\r\v\f`, so the
 * refstate is the one Keylime's `create_mb_policy.py` would write. JavaScript compiles the result
 * too (without the `u` flag, `\-`, `\ `, `\#` … are identity escapes).
 */
export function pythonReEscape(text: string): string {
  return text.replace(/[()[\]{}?*+\-|^$\\.&~# \t\n\r\v\f]/g, (c) => `\\${c}`);
}
