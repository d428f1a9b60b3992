import { LittleEndianReader } from '../../bytes/byte-reader.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import { readEfiGuid } from './efi-guid.js';
import * as ev from './event-types.js';
import { parseImageLoadEvent, type ImageLoadEvent } from './image-load-event.js';
import { decodeUtf16, parseUefiVariable, type UefiVariable } from './uefi-variable.js';

/**
 * The decoded data of one event, by the type the event claims (TCG PC Client PFP §10.4.1 Table 9).
 * Decoding never throws: data that does not have the shape its type calls for yields `malformed`
 * with the reason, and a policy that needs that event reports it.
 */
export type EventContent =
  | { readonly kind: 'variable'; readonly variable: UefiVariable }
  | { readonly kind: 'image-load'; readonly image: ImageLoadEvent }
  | { readonly kind: 'text'; readonly text: string; readonly encoding: 'ascii' | 'utf16le' }
  | { readonly kind: 'separator'; readonly value: number }
  | { readonly kind: 'firmware-blob'; readonly base: bigint; readonly length: bigint; readonly description: string | null }
  | { readonly kind: 'scrtm-version'; readonly version: string }
  | { readonly kind: 'bytes' }
  | { readonly kind: 'malformed'; readonly reason: string };

const VARIABLE_TYPES = new Set([
  ev.EV_EFI_VARIABLE_DRIVER_CONFIG,
  ev.EV_EFI_VARIABLE_BOOT,
  ev.EV_EFI_VARIABLE_BOOT2,
  ev.EV_EFI_VARIABLE_AUTHORITY,
]);
const IMAGE_TYPES = new Set([
  ev.EV_EFI_BOOT_SERVICES_APPLICATION,
  ev.EV_EFI_BOOT_SERVICES_DRIVER,
  ev.EV_EFI_RUNTIME_SERVICES_DRIVER,
]);
const TEXT_TYPES = new Set([ev.EV_EFI_ACTION, ev.EV_ACTION, ev.EV_IPL, ev.EV_NO_ACTION]);

/** Decodes `data` as the structure `type` calls for. */
export function decodeEventContent(type: number, data: Uint8Array): EventContent {
  try {
    if (VARIABLE_TYPES.has(type)) {
      return { kind: 'variable', variable: parseUefiVariable(data) };
    }
    if (IMAGE_TYPES.has(type)) {
      return { kind: 'image-load', image: parseImageLoadEvent(data) };
    }
    if (TEXT_TYPES.has(type)) {
      return decodeText(data);
    }
    switch (type) {
      case ev.EV_SEPARATOR:
        return decodeSeparator(data);
      case ev.EV_EFI_PLATFORM_FIRMWARE_BLOB:
        return decodeFirmwareBlob(data, false);
      case ev.EV_EFI_PLATFORM_FIRMWARE_BLOB2:
        return decodeFirmwareBlob(data, true);
      case ev.EV_S_CRTM_VERSION:
        return decodeScrtmVersion(data);
      default:
        return { kind: 'bytes' };
    }
  } catch (error) {
    if (error instanceof EventLogParseError) {
      return { kind: 'malformed', reason: error.message };
    }
    throw error;
  }
}

/**
 * Strings: GRUB and shim log ASCII with a trailing NUL (kept, as tpm2-tools and Keylime show it);
 * systemd-boot logs UTF-16LE (recognised by a NUL high byte after the first character and an even
 * length). Bytes outside ASCII are kept as Latin-1 so nothing is silently dropped.
 */
function decodeText(data: Uint8Array): EventContent {
  if (data.length >= 4 && data.length % 2 === 0 && data[1] === 0 && data[0] !== 0) {
    return { kind: 'text', text: decodeUtf16(data), encoding: 'utf16le' };
  }
  // A Buffer over the same bytes: `Buffer.from(data)` would copy them first.
  return { kind: 'text', text: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1'), encoding: 'ascii' };
}

/** EV_SEPARATOR data is a UINT32: 0 (normal) or 0xFFFFFFFF (error) (PFP §10.4.1). */
function decodeSeparator(data: Uint8Array): EventContent {
  if (data.length !== 4) {
    return { kind: 'malformed', reason: `separator data is ${data.length} byte(s), expected 4` };
  }
  return { kind: 'separator', value: new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) };
}

/**
 * `UEFI_PLATFORM_FIRMWARE_BLOB` = `BlobBase u64 | BlobLength u64`; `UEFI_PLATFORM_FIRMWARE_BLOB2`
 * prefixes it with `BlobDescriptionSize u8 | BlobDescription[]` (PFP §10.2.4).
 */
function decodeFirmwareBlob(data: Uint8Array, withDescription: boolean): EventContent {
  const r = new LittleEndianReader(data, EventLogParseError);
  const description = withDescription ? Buffer.from(r.bytesOf(r.u8())).toString('latin1') : null;
  const base = r.u64();
  const length = r.u64();
  r.finish();
  return { kind: 'firmware-blob', base, length, description };
}

/**
 * EV_S_CRTM_VERSION data is either a NUL-terminated UCS-2 string or an EFI_GUID (PFP §10.4.1,
 * Table 9); anything else is malformed.
 */
function decodeScrtmVersion(data: Uint8Array): EventContent {
  const chars = data.length / 2;
  const terminated = data.length >= 2 && data.length % 2 === 0 && data[data.length - 1] === 0 && data[data.length - 2] === 0;
  if (terminated) {
    const text = decodeUtf16(data.subarray(0, data.length - 2));
    if (!text.includes('\0') && chars > 0) {
      return { kind: 'scrtm-version', version: text };
    }
  }
  if (data.length === 16) {
    return { kind: 'scrtm-version', version: readEfiGuid(new LittleEndianReader(data, EventLogParseError)) };
  }
  return { kind: 'malformed', reason: `S-CRTM version is neither a NUL-terminated UCS-2 string nor a GUID (${data.length} byte(s))` };
}
