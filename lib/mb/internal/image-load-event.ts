import { LittleEndianReader } from '../../bytes/byte-reader.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import { readEfiGuid } from './efi-guid.js';
import { decodeUtf16 } from './uefi-variable.js';
import { withoutTrailingNuls } from './trailing-nuls.js';

/**
 * `UEFI_IMAGE_LOAD_EVENT` (TCG PC Client PFP §10.2.5): the data of EV_EFI_BOOT_SERVICES_APPLICATION,
 * EV_EFI_BOOT_SERVICES_DRIVER and EV_EFI_RUNTIME_SERVICES_DRIVER events. The digest of such an event is
 * the image's Authenticode (PE/COFF) hash, so nothing here is bound by the digest.
 */
export interface ImageLoadEvent {
  readonly imageLocationInMemory: bigint;
  readonly imageLengthInMemory: bigint;
  readonly imageLinkTimeAddress: bigint;
  /** The raw `EFI_DEVICE_PATH_PROTOCOL` bytes. */
  readonly devicePath: Uint8Array;
  /** A readable rendering of the device path, in the UEFI text form for the nodes we know. */
  readonly devicePathText: string;
}

/**
 * Parses `ImageLocationInMemory u64 | ImageLengthInMemory u64 | ImageLinkTimeAddress u64 |
 * LengthOfDevicePath u64 | DevicePath[LengthOfDevicePath]`, with nothing after it.
 */
export function parseImageLoadEvent(data: Uint8Array): ImageLoadEvent {
  const r = new LittleEndianReader(data, EventLogParseError);
  return r.struct('UEFI_IMAGE_LOAD_EVENT', () => {
    const imageLocationInMemory = r.u64();
    const imageLengthInMemory = r.u64();
    const imageLinkTimeAddress = r.u64();
    const length = r.u64();
    if (length > BigInt(r.remaining)) {
      throw r.error(`LengthOfDevicePath ${length} exceeds the ${r.remaining} byte(s) left`);
    }
    const devicePath = r.bytesOf(Number(length));
    return {
      imageLocationInMemory,
      imageLengthInMemory,
      imageLinkTimeAddress,
      devicePath,
      devicePathText: devicePathToText(devicePath),
    };
  });
}

/**
 * Renders an `EFI_DEVICE_PATH_PROTOCOL` (UEFI 2.10 §10.3): nodes of `Type u8 | SubType u8 |
 * Length u16 (header included)`, up to the End node (0x7F/0xFF). Firmware volume, file path, hard
 * drive, PCI and ACPI nodes get their UEFI text form; others are shown as `Path(type,subtype,hex)`.
 * A malformed path renders what could be read followed by `…malformed`, since it is only shown.
 */
export function devicePathToText(path: Uint8Array): string {
  const r = new LittleEndianReader(path, EventLogParseError);
  const nodes: string[] = [];
  try {
    while (r.remaining > 0) {
      const type = r.u8();
      const subType = r.u8();
      const length = r.u16();
      if (length < 4) {
        throw r.error(`device path node length ${length} is below 4`);
      }
      const body = r.bytesOf(length - 4);
      if (type === 0x7f && subType === 0xff) {
        break;
      }
      nodes.push(nodeText(type, subType, body));
    }
  } catch (error) {
    if (!(error instanceof EventLogParseError)) {
      throw error;
    }
    nodes.push('…malformed');
  }
  return nodes.join('/');
}

function nodeText(type: number, subType: number, body: Uint8Array): string {
  const r = new LittleEndianReader(body, EventLogParseError);
  if (type === 0x04 && subType === 0x04) {
    return withoutTrailingNuls(decodeUtf16(body));
  }
  if (type === 0x04 && subType === 0x06 && body.length === 16) {
    return `FvFile(${readEfiGuid(r)})`;
  }
  if (type === 0x04 && subType === 0x07 && body.length === 16) {
    return `FvVol(${readEfiGuid(r)})`;
  }
  if (type === 0x04 && subType === 0x01 && body.length === 38) {
    const partition = r.u32();
    const start = r.u64();
    const size = r.u64();
    const signature = r.bytesOf(16);
    const format = r.u8();
    const signatureType = r.u8();
    const sig = signatureType === 2 ? readEfiGuid(new LittleEndianReader(signature, EventLogParseError)) : hex(signature);
    return `HD(${partition},${format === 2 ? 'GPT' : 'MBR'},${sig},0x${start.toString(16)},0x${size.toString(16)})`;
  }
  if (type === 0x01 && subType === 0x01 && body.length === 2) {
    const fn = r.u8();
    const device = r.u8();
    return `Pci(0x${device.toString(16)},0x${fn.toString(16)})`;
  }
  if (type === 0x02 && subType === 0x01 && body.length === 8) {
    const hid = r.u32();
    const uid = r.u32();
    if ((hid & 0xffff) === 0x41d0 && (hid >>> 16 === 0x0a03 || hid >>> 16 === 0x0a08)) {
      return `PciRoot(0x${uid.toString(16)})`;
    }
    return `Acpi(0x${hid.toString(16)},0x${uid.toString(16)})`;
  }
  return `Path(${type},${subType},${hex(body)})`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
