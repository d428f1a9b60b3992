import { startsWithAscii } from './ascii-prefix.js';
import { withoutTrailingNuls } from './trailing-nuls.js';

/**
 * GRUB's PCR 8 EV_IPL strings: a prefix naming what GRUB measured, then the measured text (the
 * prefix itself is not measured). Upstream GRUB (grub-core/commands/tpm.c, `grub_tpm_verify_string`)
 * writes `grub_cmd: `, `kernel_cmdline: ` and `module_cmdline: ` (multiboot modules: Xen's dom0
 * kernel and initrd); Red Hat's older TPM patches (RHEL 8, go-tpm-tools' rhel8-uefi.bin) write
 * `grub_cmd ` and `grub_kernel_cmdline ` (`"%s %s", kind, text`).
 */
export type GrubStringKind = 'command' | 'kernel-cmdline' | 'module-cmdline';

const GRUB_STRING_PREFIXES: readonly { readonly prefix: string; readonly kind: GrubStringKind }[] = [
  { prefix: 'grub_cmd: ', kind: 'command' },
  { prefix: 'kernel_cmdline: ', kind: 'kernel-cmdline' },
  { prefix: 'module_cmdline: ', kind: 'module-cmdline' },
  { prefix: 'grub_cmd ', kind: 'command' },
  { prefix: 'grub_kernel_cmdline ', kind: 'kernel-cmdline' },
];

export interface GrubString {
  readonly kind: GrubStringKind;
  readonly prefix: string;
  /** The text after the prefix, as logged (GRUB's trailing NUL kept). */
  readonly body: string;
}

/** The GRUB string `text` is, or null when it has none of GRUB's prefixes. */
export function grubString(text: string): GrubString | null {
  const known = GRUB_STRING_PREFIXES.find((p) => text.startsWith(p.prefix));
  return known === undefined ? null : { kind: known.kind, prefix: known.prefix, body: text.slice(known.prefix.length) };
}

/**
 * The length of the GRUB prefix `data` (latin1, as `grubString` reads it) begins with, or 0 when it
 * has none: `grubString` without decoding the data to text, for the digest check of every EV_IPL event.
 */
export function grubPrefixLength(data: Uint8Array): number {
  return GRUB_STRING_PREFIXES.find((p) => startsWithAscii(data, p.prefix))?.prefix.length ?? 0;
}

/** What a GRUB loader command loads: a kernel (`kernel_cmdline`) or a multiboot module (`module_cmdline`). */
export type GrubLoad = 'kernel' | 'module';

/**
 * GRUB commands that measure a command line for what they load, right after their own `grub_cmd`
 * string (script/execute.c measures a command, then runs it; the loader measures nothing else into
 * PCR 8 before the command line): linux (linuxefi, linux16), multiboot/multiboot2 and ARM's
 * xen_hypervisor measure a kernel command line, module/module2 and xen_module a module's.
 */
const LOADER_COMMANDS: ReadonlyMap<string, GrubLoad> = new Map([
  ['linux', 'kernel'],
  ['linuxefi', 'kernel'],
  ['linux16', 'kernel'],
  ['multiboot', 'kernel'],
  ['multiboot2', 'kernel'],
  ['xen_hypervisor', 'kernel'],
  ['module', 'module'],
  ['module2', 'module'],
  ['xen_module', 'module'],
]);

/** The loader command `grub` is (its name and what it loads), or null for any other string. */
export function loaderCommand(grub: GrubString | null): { readonly name: string; readonly loads: GrubLoad } | null {
  if (grub?.kind !== 'command') {
    return null;
  }
  const space = grub.body.indexOf(' ');
  const name = withoutTrailingNuls(space < 0 ? grub.body : grub.body.slice(0, space));
  const loads = LOADER_COMMANDS.get(name);
  return loads === undefined ? null : { name, loads };
}
