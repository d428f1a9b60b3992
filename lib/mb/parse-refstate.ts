import { policyJsonValueBound } from '../bytes/json-text-bound.js';
import { parseCountedJson } from '../bytes/parse-counted-json.js';
import { chargeKernelCmdline, kernelCmdlineMatcher, MAX_REFSTATE_KERNELS } from './internal/kernel-cmdline-pattern.js';
import {
  MbRefstateError,
  type MbRefstate,
  type RefstateDigest,
  type RefstateKernel,
  type RefstateKey,
  type ScrtmAndBios,
} from './mb-refstate.js';

/**
 * Keylime's `hex_pat` (example.py): `0x` then lowercase hex digits, here whole bytes: Keylime compares
 * the text, ironlime the decoded bytes, and an odd last digit would be dropped by decoding.
 */
const HEX = /^0x(?:[0-9a-f]{2})+$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Parses and validates a refstate in Keylime's `example` format (keylime/mba/elchecking/example.py,
 * `refstate_to_test`): JSON text or an already-decoded value. Throws `MbRefstateError` naming the
 * field when it is not JSON, when a required key is missing or has the wrong type, when a hex value
 * is not `0x` + lowercase hex, when a kernel lacks the digest its Secure Boot mode needs, or when a
 * `kernel_cmdline` is not a Python regular expression the linear-time engine can run (kernel-cmdline-
 * pattern.ts: a back-reference or look-around is refused, naming it). Stricter than Keylime, so that a
 * refstate's cost is bounded: at most `MAX_REFSTATE_KERNELS` kernels, whose `kernel_cmdline` patterns
 * together fit `KERNEL_CMDLINES_BUDGET`. Unknown keys are ignored, as in Keylime.
 */
export function parseMbRefstate(input: string | unknown): MbRefstate {
  const value = typeof input === 'string' ? parseJson(input) : input;
  const root = object(value, 'refstate');
  const hasSecureboot = root.has_secureboot ?? true;
  if (typeof hasSecureboot !== 'boolean') {
    throw new MbRefstateError('has_secureboot must be true or false');
  }
  const refstate: MbRefstate = {
    has_secureboot: hasSecureboot,
    scrtm_and_bios: nonEmptyList(root.scrtm_and_bios, 'scrtm_and_bios', scrtmAndBios),
    pk: list(root.pk, 'pk', key),
    kek: list(root.kek, 'kek', key),
    db: list(root.db, 'db', key),
    dbx: list(root.dbx, 'dbx', key),
    mokdig: list(root.mokdig, 'mokdig', digest),
    mokxdig: list(root.mokxdig, 'mokxdig', digest),
    kernels: kernelList(root.kernels, hasSecureboot),
    ...(root.option_roms === undefined ? {} : { option_roms: list(root.option_roms, 'option_roms', digest) }),
    ...(root.firmware_apps === undefined ? {} : { firmware_apps: list(root.firmware_apps, 'firmware_apps', digest) }),
  };
  return refstate;
}

/**
 * `JSON.parse` of a refstate's text once its JSON values were counted within `policyJsonValueBound` of
 * its length: `mb_policy` is a string member of a request (32 MiB on the public evidence route), where
 * the body's own value bound does not reach.
 */
function parseJson(text: string): unknown {
  return parseCountedJson(text, policyJsonValueBound(text.length), {
    excess: (reason) => new MbRefstateError(reason),
    notJson: (error) => new MbRefstateError(`not valid JSON (${error.message})`),
  });
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MbRefstateError(`${where} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function list<T>(value: unknown, where: string, item: (v: unknown, where: string) => T): T[] {
  if (value === undefined) {
    throw new MbRefstateError(`${where} is missing`);
  }
  if (!Array.isArray(value)) {
    throw new MbRefstateError(`${where} must be a list`);
  }
  return value.map((v, i) => item(v, `${where}[${i}]`));
}

function nonEmptyList<T>(value: unknown, where: string, item: (v: unknown, where: string) => T): T[] {
  const out = list(value, where, item);
  if (out.length === 0) {
    throw new MbRefstateError(`${where} must not be empty: nothing could match`);
  }
  return out;
}

function hex(value: unknown, where: string): string {
  if (typeof value !== 'string' || !HEX.test(value)) {
    throw new MbRefstateError(`${where} must be 0x followed by lowercase hex digits, an even number of them (whole bytes)`);
  }
  return value;
}

function digest(value: unknown, where: string): RefstateDigest {
  const entries = Object.entries(object(value, where));
  if (entries.length === 0) {
    throw new MbRefstateError(`${where} must name at least one algorithm`);
  }
  return Object.fromEntries(entries.map(([alg, v]) => [alg, hex(v, `${where}.${alg}`)]));
}

function key(value: unknown, where: string): RefstateKey {
  const o = object(value, where);
  if (typeof o.SignatureOwner !== 'string' || !GUID.test(o.SignatureOwner)) {
    throw new MbRefstateError(`${where}.SignatureOwner must be a GUID`);
  }
  return { SignatureOwner: o.SignatureOwner.toLowerCase(), SignatureData: hex(o.SignatureData, `${where}.SignatureData`) };
}

function scrtmAndBios(value: unknown, where: string): ScrtmAndBios {
  const o = object(value, where);
  const platformFirmware = list(o.platform_firmware, `${where}.platform_firmware`, digest);
  if (o.scrtm === undefined) {
    return { platform_firmware: platformFirmware };
  }
  return { scrtm: digest(o.scrtm, `${where}.scrtm`), platform_firmware: platformFirmware };
}

/**
 * `kernels`: at most `MAX_REFSTATE_KERNELS`, their `kernel_cmdline` patterns within
 * `KERNEL_CMDLINES_BUDGET` together (checked before any is compiled), each compiled once here for
 * every later evaluation.
 */
function kernelList(value: unknown, hasSecureboot: boolean): RefstateKernel[] {
  if (Array.isArray(value) && value.length > MAX_REFSTATE_KERNELS) {
    throw new MbRefstateError(`kernels has ${value.length} entries, at most ${MAX_REFSTATE_KERNELS} are accepted`);
  }
  let units = 0;
  const kernels = nonEmptyList(value, 'kernels', (v, where) => {
    const k = kernel(v, where, hasSecureboot);
    units = chargeKernelCmdline(k.kernel_cmdline, `${where}.kernel_cmdline`, units);
    return k;
  });
  kernels.forEach((k, index) => kernelCmdlineMatcher(k, `kernels[${index}].kernel_cmdline`));
  return kernels;
}

function kernel(value: unknown, where: string, hasSecureboot: boolean): RefstateKernel {
  const o = object(value, where);
  const required = (name: string) => {
    if (o[name] === undefined) {
      throw new MbRefstateError(`${where}.${name} is missing${hasSecureboot ? '' : ' (has_secureboot is false)'}`);
    }
    return hex(o[name], `${where}.${name}`);
  };
  if (typeof o.kernel_cmdline !== 'string') {
    throw new MbRefstateError(`${where}.kernel_cmdline must be a string (a regular expression)`);
  }
  return {
    shim_authcode_sha256: required('shim_authcode_sha256'),
    grub_authcode_sha256: required('grub_authcode_sha256'),
    ...(hasSecureboot
      ? { kernel_authcode_sha256: required('kernel_authcode_sha256') }
      : { vmlinuz_plain_sha256: required('vmlinuz_plain_sha256') }),
    ...(o.initrd_plain_sha256 === undefined ? {} : { initrd_plain_sha256: hex(o.initrd_plain_sha256, `${where}.initrd_plain_sha256`) }),
    kernel_cmdline: o.kernel_cmdline,
  };
}
