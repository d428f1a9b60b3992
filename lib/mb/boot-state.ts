import type { BootEvent } from './boot-events.js';
import * as ev from './internal/event-types.js';
import { grubString } from './internal/grub-strings.js';
import { configVariableMeasurements } from './internal/secure-boot-variables.js';

/**
 * Readers of boot facts from a list of `BootEvent`s. Given the events of a verified log they state
 * what the quote vouches for (check `dataMatchesDigest` where content matters); given the events of a
 * parsed log they only state what the log claims.
 */

/**
 * Secure Boot as the `SecureBoot` variable measured in PCR 7 says (PFP §3.3.4.8), the measurement
 * found by its content whatever type it claims (`configVariableMeasurements`).
 */
export interface SecureBootState {
  /** True/false from the variable's one byte; null when it cannot be determined. */
  readonly enabled: boolean | null;
  /** Why `enabled` is null. */
  readonly reason: string | null;
  /** The measuring event, when there is exactly one. */
  readonly event: BootEvent | null;
}

export function secureBootState(events: readonly BootEvent[]): SecureBootState {
  const found = configVariableMeasurements(events).filter((m) => m.name === 'SecureBoot');
  const only = found[0];
  if (only === undefined) {
    return { enabled: null, reason: 'no SecureBoot variable is measured in PCR 7', event: null };
  }
  if (found.length > 1) {
    return { enabled: null, reason: `the SecureBoot variable is measured ${found.length} times`, event: null };
  }
  const data = only.variable.variableData;
  if (data.length !== 1) {
    return { enabled: null, reason: `SecureBoot variable data is ${data.length} byte(s), expected 1`, event: only.event };
  }
  if (data[0] !== 0 && data[0] !== 1) {
    return { enabled: null, reason: `SecureBoot variable value is ${data[0]}, expected 0 or 1`, event: only.event };
  }
  return { enabled: data[0] === 1, reason: null, event: only.event };
}

/** Digests (hex) of the EFI applications loaded, in order: PCR 4 EV_EFI_BOOT_SERVICES_APPLICATION. */
export function efiAppDigests(events: readonly BootEvent[]): string[] {
  return events
    .filter((e) => e.pcrIndex === 4 && e.untrustedType === ev.EV_EFI_BOOT_SERVICES_APPLICATION)
    .map((e) => Buffer.from(e.digest).toString('hex'));
}


/** A kernel command line GRUB measured, as Keylime reads it and as the event holds it. */
export interface KernelCommandLine {
  /** The text after `kernel_cmdline: ` (or `grub_kernel_cmdline `), GRUB's one trailing NUL dropped. */
  readonly text: string;
  /** The same with the NUL kept (what refstates made by ironlime before 2026-12 escape). */
  readonly rawText: string;
  readonly event: BootEvent;
}

/**
 * Kernel command lines GRUB measured into PCR 8 (`kernel_cmdline: …` EV_IPL strings, or
 * `grub_kernel_cmdline …` from Red Hat's older GRUB patches: the same measurement, so both count,
 * and a log with one of each has two). GRUB measures the string with its terminating NUL; Keylime's
 * event-log parser drops one trailing NUL from every string
 * (keylime/mba/elparsing/tpm2_tools_elparser.py, `__unescape_eventlog`), and its
 * `create_mb_refstate` escapes and its policy matches that text, so `text` is the same.
 */
export function kernelCommandLines(events: readonly BootEvent[]): KernelCommandLine[] {
  const out: KernelCommandLine[] = [];
  for (const e of events) {
    const grub = e.pcrIndex === 8 && e.untrustedType === ev.EV_IPL && e.content.kind === 'text' ? grubString(e.content.text) : null;
    if (grub?.kind === 'kernel-cmdline') {
      const rawText = grub.body;
      out.push({ text: rawText.endsWith('\0') ? rawText.slice(0, -1) : rawText, rawText, event: e });
    }
  }
  return out;
}

/** The S-CRTM version events of PCR 0, decoded (or why not). */
export function scrtmVersions(events: readonly BootEvent[]): { version: string | null; reason: string | null; event: BootEvent }[] {
  return events
    .filter((e) => e.pcrIndex === 0 && e.untrustedType === ev.EV_S_CRTM_VERSION)
    .map((e) => {
      if (e.content.kind === 'scrtm-version') {
        return { version: e.content.version, reason: null, event: e };
      }
      return { version: null, reason: e.content.kind === 'malformed' ? e.content.reason : 'not an S-CRTM version', event: e };
    });
}
