import type { BootEvent } from '../boot-events.js';
import * as ev from './event-types.js';
import { configVariableMeasurements } from './secure-boot-variables.js';
import { parseSignatureLists, type EfiSignature } from './uefi-variable.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import { withoutTrailingNuls } from './trailing-nuls.js';
import { finish, type Stepwise } from '../../ima/stepwise.js';

/**
 * Groups the events of a boot log into the components Keylime's `example` policy checks
 * (keylime/mba/elchecking/example.py), shared by refstate creation and policy evaluation.
 */

export type KeyVariableName = 'PK' | 'KEK' | 'db' | 'dbx';

/** One measurement of PK, KEK, db or dbx: its signatures, or why they could not be read. */
export interface KeyVariableMeasurement {
  readonly event: BootEvent;
  readonly signatures: readonly EfiSignature[] | null;
  readonly error: string | null;
}

/**
 * Signatures one measurement of a key variable may hold; one holding more is not read (its error says
 * so, and the policy fails it). Real ones hold tens (PK, KEK, db) to about a thousand (dbx); a
 * variable the node extends itself may hold some 260,000 under the log's size bound, whose reading and
 * checking held the verifier's event loop for seconds in one step.
 */
export const MAX_KEY_VARIABLE_SIGNATURES = 16_384;
/**
 * Signature lists one measurement of a key variable may hold: real ones hold a few (a list per
 * certificate, one of hashes); 16,384 lists of one signature each took 150–330 ms to read in one step.
 */
export const MAX_KEY_VARIABLE_LISTS = 1024;

/**
 * Every PCR 7 measurement of PK, KEK, db and dbx (PFP §3.3.4.8), found by content whatever type it
 * claims (`configVariableMeasurements`).
 */
export function keyVariableMeasurements(events: readonly BootEvent[]): Record<KeyVariableName, KeyVariableMeasurement[]> {
  return finish(keyVariableMeasurementsStepwise(events));
}

/** `keyVariableMeasurements`, pausing after each measurement read (`Stepwise`). */
export function* keyVariableMeasurementsStepwise(events: readonly BootEvent[]): Stepwise<Record<KeyVariableName, KeyVariableMeasurement[]>> {
  const out: Record<KeyVariableName, KeyVariableMeasurement[]> = { PK: [], KEK: [], db: [], dbx: [] };
  for (const { name, variable, event } of configVariableMeasurements(events)) {
    if (name === 'SecureBoot') {
      continue;
    }
    try {
      out[name].push({ event, signatures: signaturesOf(variable.variableData), error: null });
    } catch (error) {
      if (!(error instanceof EventLogParseError)) {
        throw error;
      }
      out[name].push({ event, signatures: null, error: error.message });
    }
    yield;
  }
  return out;
}

/** The signatures of the first measurement of each key variable (null when not measured). */
export function secureBootKeys(events: readonly BootEvent[]): Record<KeyVariableName, readonly EfiSignature[] | null> {
  const m = keyVariableMeasurements(events);
  const first = (name: KeyVariableName) => m[name][0]?.signatures ?? null;
  return { PK: first('PK'), KEK: first('KEK'), db: first('db'), dbx: first('dbx') };
}

function signaturesOf(data: Uint8Array): EfiSignature[] {
  return parseSignatureLists(data, MAX_KEY_VARIABLE_SIGNATURES, MAX_KEY_VARIABLE_LISTS).flatMap((list) => list.signatures);
}

/** PCR 0 EV_S_CRTM_VERSION events. */
export function scrtmEvents(events: readonly BootEvent[]): BootEvent[] {
  return events.filter((e) => e.pcrIndex === 0 && e.untrustedType === ev.EV_S_CRTM_VERSION);
}

/** Event types of PCR 0 that measure firmware code (PFP §10.4.4, PCR 0), in log order. */
export const FIRMWARE_CODE_TYPES: ReadonlySet<number> = new Set([
  ev.EV_EFI_PLATFORM_FIRMWARE_BLOB,
  ev.EV_EFI_PLATFORM_FIRMWARE_BLOB2,
  ev.EV_POST_CODE,
  ev.EV_POST_CODE2,
  ev.EV_S_CRTM_CONTENTS,
]);

/**
 * PCR 0 firmware code measurements (Keylime's `platform_firmware`, plus EV_POST_CODE and S-CRTM
 * contents), and EV_NONHOST_INFO / EV_NONHOST_CONFIG events whose digest is not the hash of their
 * data: such a digest measures something the log does not show (Intel CSME's in a real Lenovo log),
 * so it is pinned like code, and a firmware blob relabelled EV_NONHOST_INFO still counts as one.
 */
export function firmwareCode(events: readonly BootEvent[]): BootEvent[] {
  return events.filter((e) => e.pcrIndex === 0 && (FIRMWARE_CODE_TYPES.has(e.untrustedType) || (NONHOST_TYPES.has(e.untrustedType) && !e.dataMatchesDigest)));
}

const NONHOST_TYPES: ReadonlySet<number> = new Set([ev.EV_NONHOST_INFO, ev.EV_NONHOST_CONFIG]);

/** Everything extended into PCR 2 (option ROMs and other platform drivers) except separators. */
export function pcr2Code(events: readonly BootEvent[]): BootEvent[] {
  return events.filter((e) => e.pcrIndex === 2 && e.untrustedType !== ev.EV_SEPARATOR);
}

/** PCR 4 EV_EFI_BOOT_SERVICES_APPLICATION events, in load order. */
export function bootApplications(events: readonly BootEvent[]): BootEvent[] {
  return events.filter((e) => e.pcrIndex === 4 && e.untrustedType === ev.EV_EFI_BOOT_SERVICES_APPLICATION);
}

/** Keylime's pattern for firmware-internal applications (create_mb_policy.py, `get_kernel`). */
const FIRMWARE_VOLUME_APP = /^FvVol\(\w{8}-\w{4}-\w{4}-\w{4}-\w{12}\)\/FvFile\(\w{8}-\w{4}-\w{4}-\w{4}-\w{12}\)/;

/**
 * Whether the application was loaded from a firmware volume (boot menu, setup). Decided from the
 * device path, which is not covered by the digest: only refstate creation uses it; the policy
 * recognises such applications by digest (`firmware_apps`).
 */
export function isFirmwareVolumeApp(event: BootEvent): boolean {
  return event.content.kind === 'image-load' && FIRMWARE_VOLUME_APP.test(event.content.image.devicePathText);
}

/** What a PCR 9 EV_IPL string names, by the patterns of Keylime's `example` policy, in its order. */
export type Pcr9Kind = 'loader-entry' | 'grub-file' | 'vmlinuz' | 'initrd' | 'other';

/**
 * Red Hat's older GRUB patches (RHEL 8) log the kernel and initrd `linuxefi` loads not by file name
 * but as `grub_linuxefi Kernel` and `grub_linuxefi Initrd` (one per initrd file).
 */
const RED_HAT_LINUXEFI: ReadonlyMap<string, Pcr9Kind> = new Map([
  ['grub_linuxefi Kernel', 'vmlinuz'],
  ['grub_linuxefi Initrd', 'initrd'],
]);

export function pcr9Kind(text: string): Pcr9Kind {
  const linuxefi = RED_HAT_LINUXEFI.get(text);
  if (linuxefi !== undefined) {
    return linuxefi;
  }
  if (/\/loader\/entries/.test(text)) {
    return 'loader-entry';
  }
  if (/\/grub/.test(text)) {
    return 'grub-file';
  }
  if (/\/vmlinuz/.test(text)) {
    return 'vmlinuz';
  }
  if (/\/initrd|\/initramfs/.test(text)) {
    return 'initrd';
  }
  return 'other';
}

/** PCR 9 EV_IPL string events (files GRUB read), with their text without trailing NULs. */
export function pcr9Text(events: readonly BootEvent[]): { text: string; kind: Pcr9Kind; event: BootEvent }[] {
  const out: { text: string; kind: Pcr9Kind; event: BootEvent }[] = [];
  for (const e of events) {
    if (e.pcrIndex === 9 && e.untrustedType === ev.EV_IPL && e.content.kind === 'text') {
      const text = withoutTrailingNuls(e.content.text);
      out.push({ text, kind: pcr9Kind(text), event: e });
    }
  }
  return out;
}

export function initrdEvents(events: readonly BootEvent[]): BootEvent[] {
  return pcr9Text(events).filter((t) => t.kind === 'initrd').map((t) => t.event);
}

export function vmlinuzEvents(events: readonly BootEvent[]): BootEvent[] {
  return pcr9Text(events).filter((t) => t.kind === 'vmlinuz').map((t) => t.event);
}

/** The names shim logs its PCR 14 records under: its MOK lists, and two one-byte state variables. */
export const SHIM_PCR14_NAMES = ['MokList', 'MokListX', 'MokListTrusted', 'MokPolicy', 'MokSBState'] as const;
export type ShimPcr14Name = (typeof SHIM_PCR14_NAMES)[number];

/**
 * shim's PCR 14 EV_IPL records (mok.c, MOK_VARIABLE_LOG: the digest is of the variable's data, the
 * text its name): the MOK lists, and when they are set MokPolicy (shim 15.8+) and MokSBState.
 */
export function mokEvents(events: readonly BootEvent[]): Record<ShimPcr14Name | 'other', BootEvent[]> {
  const out: Record<ShimPcr14Name | 'other', BootEvent[]> = { MokList: [], MokListX: [], MokListTrusted: [], MokPolicy: [], MokSBState: [], other: [] };
  for (const e of events) {
    if (e.pcrIndex !== 14 || e.untrustedType !== ev.EV_IPL) {
      continue;
    }
    const name = e.content.kind === 'text' ? withoutTrailingNuls(e.content.text) : '';
    out[isShimPcr14Name(name) ? name : 'other'].push(e);
  }
  return out;
}

export function isShimPcr14Name(name: string): name is ShimPcr14Name {
  return (SHIM_PCR14_NAMES as readonly string[]).includes(name);
}
