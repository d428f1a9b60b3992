import type { BootEvent } from '../boot-events.js';
import { FIRMWARE_CODE_TYPES, isShimPcr14Name, pcr9Kind } from './boot-components.js';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE } from './efi-guid.js';
import * as ev from './event-types.js';
import { grubString, loaderCommand } from './grub-strings.js';
import type { PolicyFinding } from './policy-finding.js';
import { configVariableName, isAuthorityVariable, variableOf } from './secure-boot-variables.js';
import { withoutTrailingNuls } from './trailing-nuls.js';
import { EVENTS_PER_STEP } from './events-per-step.js';
import type { Stepwise } from '../../ima/stepwise.js';

/**
 * Which (PCR, event type) combinations may appear in the PCRs the `example` policy covers, like
 * the `Dispatcher` of keylime/mba/elchecking/example.py: an event no rule expects is a failure, so
 * a claimed event type cannot hide a measurement from the component checks. Each rule returns the
 * reason an event is not acceptable, or null. Component checks (keys, firmware, boot chain) are
 * made elsewhere; the rules here only accept their events.
 */
type Rule = (event: BootEvent, position: EventPosition) => string | null;

/** Where an event stands in its PCR: after the PCR's separator (PCRs 0-7); the PCR 8 event before it. */
interface EventPosition {
  readonly afterSeparator: boolean;
  readonly previousPcr8: BootEvent | null;
}

const accept: Rule = () => null;

/** EV_SEPARATOR: data 0 or 0xFFFFFFFF (PFP §10.4.1) and its digest is the digest of that data. */
const separator: Rule = (e) => {
  if (!e.dataMatchesDigest) {
    return 'separator digest is not the digest of its data';
  }
  return e.content.kind === 'separator' && (e.content.value === 0 || e.content.value === 0xffffffff)
    ? null
    : 'separator value is not 0x00000000 or 0xFFFFFFFF';
};

/** EV_EFI_ACTION strings the PFP defines for the PCR (§10.4.4), with a digest of the string. */
function action(allowed: readonly string[]): Rule {
  return (e) => {
    const text = e.content.kind === 'text' ? withoutTrailingNuls(e.content.text) : null;
    if (text === null || !allowed.includes(text)) {
      return `EV_EFI_ACTION ${JSON.stringify(text)} is not expected in PCR ${e.pcrIndex}`;
    }
    return e.dataMatchesDigest ? null : `EV_EFI_ACTION ${JSON.stringify(text)} digest is not the digest of its string`;
  };
}

/** PCR 7 configuration variables the policy knows (SecureBoot, PK, KEK, db, dbx). */
const pcr7Variable: Rule = (e) => {
  if (e.content.kind !== 'variable') {
    return 'PCR 7 variable event is not a UEFI_VARIABLE_DATA';
  }
  const { variableName, unicodeName } = e.content.variable;
  const known =
    (variableName === EFI_GLOBAL_VARIABLE && ['SecureBoot', 'PK', 'KEK'].includes(unicodeName)) ||
    (variableName === EFI_IMAGE_SECURITY_DATABASE && ['db', 'dbx'].includes(unicodeName));
  return known ? null : `PCR 7 configuration variable ${variableName}:${unicodeName} is not one the policy knows`;
};

/**
 * PCR 7 EV_EFI_VARIABLE_AUTHORITY: the record of what verified an image (PFP §3.3.4.8), as Keylime's
 * `example` policy dispatches it by variable: a UEFI_VARIABLE_DATA, proven by its digest, naming db,
 * vendor_db or one of shim's variables (`isAuthorityVariable`), never a Secure Boot configuration
 * variable (that would be a relabelled configuration measurement). Data that is not a
 * UEFI_VARIABLE_DATA at all is accepted only after the separator: shim 15 logs its vendor certificate
 * so (real GCE, Debian and Fedora logs), and such data names no variable, so it can hide none.
 */
const authority: Rule = (e, position) => {
  const variable = variableOf(e);
  if (variable === null) {
    return position.afterSeparator ? null : 'EV_EFI_VARIABLE_AUTHORITY before the PCR 7 separator is not a UEFI_VARIABLE_DATA';
  }
  const name = `${variable.variableName}:${variable.unicodeName}`;
  if (configVariableName(e, variable) !== null) {
    return `EV_EFI_VARIABLE_AUTHORITY measures the Secure Boot configuration variable ${name}`;
  }
  if (!isAuthorityVariable(variable)) {
    return `EV_EFI_VARIABLE_AUTHORITY variable ${name} is not one the policy knows`;
  }
  return e.dataMatchesDigest ? null : `EV_EFI_VARIABLE_AUTHORITY ${name} digest is not the digest of its data`;
};

/** PCR 1 boot variables: BootOrder and Boot#### of the global variable GUID. */
const bootVariable: Rule = (e) => {
  const v = e.content.kind === 'variable' ? e.content.variable : null;
  return v !== null && v.variableName === EFI_GLOBAL_VARIABLE && /^(BootOrder|Boot[0-9a-fA-F]+)$/.test(v.unicodeName)
    ? null
    : 'PCR 1 boot variable is not BootOrder or Boot####';
};

/**
 * PCR 8: GRUB commands, the kernel command line and multiboot module command lines
 * (`grub-strings.ts`), proven by their digest. GRUB measures the text it logs (every such string in
 * the shipped real logs is proven); an unproven one could be the real command line's event with its
 * text rewritten to a command, so that a command line extended at runtime would be the only one the
 * policy sees. GRUB measures the text without its prefix, so the real command line renamed a command
 * or a module command line is proven too; where each kind can stand tells them apart. GRUB measures
 * a command before running it, and a loader command (`loaderCommand`) measures the command line of
 * what it loads next, before anything else in PCR 8: so a command right after a loader command is
 * refused (a multiboot kernel's command line does not even begin with a path), and so is a module
 * command line anywhere but right after a module command (`module2 …`): a kernel command line follows
 * its own `linux` or `multiboot2` command. A command beginning with `/` or `(` is refused as well: a
 * Linux command line begins with the kernel's path, a GRUB command with its name.
 */
const pcr8String: Rule = (e, position) => {
  const text = e.content.kind === 'text' ? e.content.text : '';
  const shown = JSON.stringify(text.slice(0, 60));
  const grub = grubString(text);
  if (grub === null) {
    return `PCR 8 string ${shown} is not a GRUB command, kernel command line or module command line`;
  }
  if (!e.dataMatchesDigest) {
    return `PCR 8 string ${shown} is not what its digest measures`;
  }
  const previous = position.previousPcr8 === null ? null : loaderCommand(grubStringOf(position.previousPcr8));
  if (grub.kind === 'command' && (grub.body.startsWith('/') || grub.body.startsWith('('))) {
    return `PCR 8 string ${shown} is a kernel command line under the ${JSON.stringify(grub.prefix)} prefix`;
  }
  if (grub.kind === 'command' && previous !== null) {
    return `PCR 8 string ${shown} is a command right after the loader command ${JSON.stringify(previous.name)}, which measures its command line there`;
  }
  if (grub.kind === 'module-cmdline' && previous?.loads !== 'module') {
    return `PCR 8 string ${shown} is a module command line that does not follow a module command`;
  }
  return null;
};

function grubStringOf(e: BootEvent) {
  return e.content.kind === 'text' ? grubString(e.content.text) : null;
}

/**
 * PCR 9: files GRUB or systemd-boot read (loader entries, GRUB files, kernel, initrd), and any other
 * file GRUB read by its path (`/…` or `(hd0,gpt3)/…`: Fedora CoreOS's GRUB configuration sources
 * `/ignition.firstboot`, Xen boots load `/xen.gz`). A file's name is not covered by its digest, so
 * refusing a name protects nothing a `…/grub…` name would not already pass; the kernel and initrd
 * are told by their names first, and a text that is no path at all is still refused.
 */
const pcr9String: Rule = (e) => {
  const text = e.content.kind === 'text' ? withoutTrailingNuls(e.content.text) : '';
  return pcr9Kind(text) === 'other' && !text.startsWith('/') && !text.startsWith('(')
    ? `PCR 9 file ${JSON.stringify(text.slice(0, 60))} is not a loader entry, GRUB file, kernel, initrd or file path`
    : null;
};

/** PCR 14: shim's MOK lists and state variables (`SHIM_PCR14_NAMES`). */
const pcr14String: Rule = (e) => {
  const text = e.content.kind === 'text' ? withoutTrailingNuls(e.content.text) : '';
  return isShimPcr14Name(text) ? null : `PCR 14 string ${JSON.stringify(text.slice(0, 60))} is not a MOK list or shim state variable`;
};

const firmwareCode = new Map<number, Rule>([...FIRMWARE_CODE_TYPES].map((t) => [t, accept]));

const RULES: ReadonlyMap<number, ReadonlyMap<number, Rule>> = new Map<number, ReadonlyMap<number, Rule>>([
  [0, new Map<number, Rule>([
    [ev.EV_S_CRTM_VERSION, accept],
    ...firmwareCode,
    [ev.EV_NONHOST_INFO, accept],
    [ev.EV_NONHOST_CONFIG, accept],
    [ev.EV_SEPARATOR, separator],
  ])],
  [1, new Map<number, Rule>([
    [ev.EV_CPU_MICROCODE, accept],
    [ev.EV_EFI_HANDOFF_TABLES, accept],
    [ev.EV_EFI_HANDOFF_TABLES2, accept],
    [ev.EV_PLATFORM_CONFIG_FLAGS, accept],
    [ev.EV_TABLE_OF_DEVICES, accept],
    [ev.EV_NONHOST_CONFIG, accept],
    [ev.EV_EFI_VARIABLE_DRIVER_CONFIG, accept],
    [ev.EV_EFI_VARIABLE_BOOT, bootVariable],
    [ev.EV_EFI_VARIABLE_BOOT2, bootVariable],
    [ev.EV_SEPARATOR, separator],
  ])],
  [2, new Map<number, Rule>([[ev.EV_SEPARATOR, separator]])],
  [3, new Map<number, Rule>([[ev.EV_SEPARATOR, separator]])],
  [4, new Map<number, Rule>([
    [ev.EV_EFI_BOOT_SERVICES_APPLICATION, accept],
    [ev.EV_EFI_ACTION, action(['Calling EFI Application from Boot Option', 'Returning from EFI Application from Boot Option'])],
    [ev.EV_SEPARATOR, separator],
  ])],
  [5, new Map<number, Rule>([
    [ev.EV_EFI_ACTION, action(['Exit Boot Services Invocation', 'Exit Boot Services Returned with Failure', 'Exit Boot Services Returned with Success'])],
    [ev.EV_EFI_GPT_EVENT, accept],
    [ev.EV_EFI_GPT_EVENT2, accept],
    [ev.EV_SEPARATOR, separator],
  ])],
  [6, new Map<number, Rule>([[ev.EV_SEPARATOR, separator]])],
  [7, new Map<number, Rule>([
    [ev.EV_EFI_VARIABLE_DRIVER_CONFIG, pcr7Variable],
    [ev.EV_EFI_VARIABLE_AUTHORITY, authority],
    [ev.EV_SEPARATOR, separator],
  ])],
  [8, new Map<number, Rule>([[ev.EV_IPL, pcr8String]])],
  [9, new Map<number, Rule>([
    [ev.EV_IPL, pcr9String],
    [ev.EV_EVENT_TAG, accept],
  ])],
  [14, new Map<number, Rule>([[ev.EV_IPL, pcr14String]])],
]);

/** PCRs whose events the policy examines (Keylime `Example.relevant_pcr_indices`). */
export const EXAMPLE_POLICY_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/**
 * The event types accepted after a PCR's EV_SEPARATOR, for PCRs 0-7. Firmware measures the
 * separator into PCRs 0-7 once, at the pre-OS to OS-present transition (PFP §3.3.4.1-§3.3.4.8); what
 * follows it comes from boot applications (or from a root user extending PCRs 0-15 at locality 0).
 * Only what the PFP has boot applications and the firmware's boot manager measure after it, and real
 * logs show, is accepted: BootOrder/Boot#### and handoff tables and platform flags re-measured in
 * PCR 1 (Lenovo, Google and edk2 logs), EFI applications and their boot-attempt actions in PCR 4,
 * GPT (EV_EFI_GPT_EVENT, or EV_EFI_GPT_EVENT2 from PFP v1.06 firmware) and ExitBootServices in
 * PCR 5, and verification authorities in PCR 7. PCR 2 accepts anything
 * (drivers loaded from a boot option): its code is pinned by digest (`option_roms`).
 */
const AFTER_SEPARATOR: ReadonlyMap<number, ReadonlySet<number>> = new Map([
  [0, new Set<number>()],
  [1, new Set([ev.EV_EFI_VARIABLE_BOOT, ev.EV_EFI_VARIABLE_BOOT2, ev.EV_EFI_HANDOFF_TABLES, ev.EV_EFI_HANDOFF_TABLES2, ev.EV_PLATFORM_CONFIG_FLAGS])],
  [3, new Set<number>()],
  [4, new Set([ev.EV_EFI_BOOT_SERVICES_APPLICATION, ev.EV_EFI_ACTION])],
  [5, new Set([ev.EV_EFI_ACTION, ev.EV_EFI_GPT_EVENT, ev.EV_EFI_GPT_EVENT2])],
  [6, new Set<number>()],
  [7, new Set([ev.EV_EFI_VARIABLE_AUTHORITY])],
]);

/**
 * Applies the rules to every event of the policy's PCRs, in log order (the order each PCR was
 * extended in). PCR 2 (option ROMs and drivers) accepts every event type; its digests are checked
 * against `option_roms` when the refstate has it. Pauses every `EVENTS_PER_STEP` events (`Stepwise`).
 */
export function* eventRuleFindings(events: readonly BootEvent[]): Stepwise<PolicyFinding[]> {
  const findings: PolicyFinding[] = [];
  const separated = new Set<number>();
  let previousPcr8: BootEvent | null = null;
  for (let i = 0; i < events.length; i += 1) {
    if (i % EVENTS_PER_STEP === EVENTS_PER_STEP - 1) yield;
    const e = events[i] as BootEvent;
    if (!EXAMPLE_POLICY_PCRS.includes(e.pcrIndex)) {
      continue;
    }
    const position = { afterSeparator: separated.has(e.pcrIndex), previousPcr8 };
    const reason = e.pcrIndex <= 7 ? (separatorOrderReason(e, position.afterSeparator) ?? typeReason(e, position)) : typeReason(e, position);
    if (e.pcrIndex <= 7 && isSeparatorMeasurement(e)) {
      separated.add(e.pcrIndex);
    }
    if (e.pcrIndex === 8) {
      previousPcr8 = e;
    }
    if (reason !== null) {
      findings.push({ component: 'event_log', reason: `event ${e.sequence}: ${reason}`, events: [e.sequence] });
    }
  }
  return findings;
}

function typeReason(e: BootEvent, position: EventPosition): string | null {
  if (e.pcrIndex === 2 && e.untrustedType !== ev.EV_SEPARATOR) {
    return null;
  }
  const rule = RULES.get(e.pcrIndex)?.get(e.untrustedType);
  return rule === undefined ? `${e.untrustedTypeName} is not expected in PCR ${e.pcrIndex}` : rule(e, position);
}

/** PCRs 0-7: one separator each, and after it only the types `AFTER_SEPARATOR` lists. */
function separatorOrderReason(e: BootEvent, afterSeparator: boolean): string | null {
  if (!afterSeparator) {
    return null;
  }
  if (isSeparatorMeasurement(e)) {
    return `a second separator in PCR ${e.pcrIndex}`;
  }
  const allowed = AFTER_SEPARATOR.get(e.pcrIndex);
  return allowed === undefined || allowed.has(e.untrustedType) ? null : `${e.untrustedTypeName} after the PCR ${e.pcrIndex} separator`;
}

/**
 * A separator by its claimed type, or by its content whatever type it claims (data 0 or 0xFFFFFFFF,
 * proven by its digest): relabelling the real separator does not move where the PCR's boot-time
 * measurements end.
 */
function isSeparatorMeasurement(e: BootEvent): boolean {
  if (e.untrustedType === ev.EV_SEPARATOR) {
    return true;
  }
  const d = e.untrustedData;
  if (d.length !== 4 || !e.dataMatchesDigest) {
    return false;
  }
  const value = new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);
  return value === 0 || value === 0xffffffff;
}
