import { LittleEndianReader } from '../../bytes/byte-reader.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import { readEfiGuid } from './efi-guid.js';

/** `UEFI_VARIABLE_DATA` (TCG PC Client PFP §10.2.6, Table "UEFI_VARIABLE_DATA"). */
export interface UefiVariable {
  /** VariableName: the vendor GUID of the variable. */
  readonly variableName: string;
  /** UnicodeName, decoded from UTF-16LE. */
  readonly unicodeName: string;
  readonly variableData: Uint8Array;
}

/** One `EFI_SIGNATURE_DATA` of a signature list (UEFI 2.10 §32.4.1). */
export interface EfiSignature {
  readonly signatureOwner: string;
  readonly signatureData: Uint8Array;
}

/** One `EFI_SIGNATURE_LIST` (UEFI 2.10 §32.4.1). */
export interface EfiSignatureList {
  readonly signatureType: string;
  readonly signatureHeader: Uint8Array;
  readonly signatures: readonly EfiSignature[];
}

/** No UEFI variable name comes near this; it bounds the UTF-16 decoding of a hostile length. */
const MAX_UNICODE_NAME_CHARS = 1024;

/**
 * Parses `UEFI_VARIABLE_DATA`: `VariableName GUID | UnicodeNameLength u64 (in CHAR16) |
 * VariableDataLength u64 | UnicodeName[UnicodeNameLength] | VariableData[VariableDataLength]`, with
 * nothing after it. Throws `EventLogParseError` when the data does not have that shape.
 */
export function parseUefiVariable(data: Uint8Array): UefiVariable {
  const r = new LittleEndianReader(data, EventLogParseError);
  return r.struct('UEFI_VARIABLE_DATA', () => {
    const variableName = readEfiGuid(r);
    const nameChars = r.u64();
    const dataLength = r.u64();
    if (nameChars > BigInt(MAX_UNICODE_NAME_CHARS)) {
      throw r.error(`UnicodeNameLength ${nameChars} is too long`);
    }
    if (dataLength > BigInt(r.remaining)) {
      throw r.error(`VariableDataLength ${dataLength} exceeds the ${r.remaining} byte(s) left`);
    }
    const unicodeName = decodeUtf16(r.bytesOf(Number(nameChars) * 2));
    const variableData = r.bytesOf(Number(dataLength));
    r.finish();
    return { variableName, unicodeName, variableData };
  });
}

/**
 * Parses the value of PK, KEK, db, dbx (and shim's MokList…): a sequence of
 * `EFI_SIGNATURE_LIST` = `SignatureType GUID | SignatureListSize u32 | SignatureHeaderSize u32 |
 * SignatureSize u32 | SignatureHeader[SignatureHeaderSize] | EFI_SIGNATURE_DATA[]`, each
 * `EFI_SIGNATURE_DATA` = `SignatureOwner GUID | SignatureData[SignatureSize - 16]`. More than `maxLists`
 * lists, or more than `maxSignatures` signatures in all, are refused before those past the bound are read.
 */
export function parseSignatureLists(data: Uint8Array, maxSignatures = Number.POSITIVE_INFINITY, maxLists = Number.POSITIVE_INFINITY): EfiSignatureList[] {
  const r = new LittleEndianReader(data, EventLogParseError);
  const lists: EfiSignatureList[] = [];
  let signatures = 0;
  while (r.remaining > 0) {
    if (lists.length >= maxLists) {
      throw r.error(`more than ${maxLists} EFI_SIGNATURE_LISTs`);
    }
    const list = r.struct(`EFI_SIGNATURE_LIST[${lists.length}]`, () => readSignatureList(r, maxSignatures - signatures));
    signatures += list.signatures.length;
    lists.push(list);
  }
  return lists;
}

/**
 * Whether `parseSignatureLists(data)` would parse `data` (without a bound on its signatures): the same
 * checks of each list's header, without reading a signature. Hundreds of thousands of signatures, which a
 * hostile node's PCR 7 event may hold, cost no object each: asking this of one event of 240,000 held the
 * verifier's event loop for seconds.
 */
export function hasSignatureListsShape(data: Uint8Array): boolean {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at < data.length; ) {
    // SignatureType GUID (16 bytes), SignatureListSize, SignatureHeaderSize, SignatureSize.
    const fixed = 28;
    if (data.length - at < fixed) return false;
    const listSize = view.getUint32(at + 16, true);
    const headerSize = view.getUint32(at + 20, true);
    const signatureSize = view.getUint32(at + 24, true);
    if (listSize < fixed + headerSize || listSize - fixed > data.length - at - fixed) return false;
    const body = listSize - fixed - headerSize;
    if (signatureSize < 16 || body % signatureSize !== 0) return false;
    at += listSize;
  }
  return true;
}

function readSignatureList(r: LittleEndianReader, maxSignatures: number): EfiSignatureList {
  const start = r.offset;
  const signatureType = readEfiGuid(r);
  const listSize = r.u32();
  const headerSize = r.u32();
  const signatureSize = r.u32();
  const fixed = r.offset - start;
  if (listSize < fixed + headerSize || listSize - fixed > r.remaining) {
    throw r.error(`SignatureListSize ${listSize} does not fit the header and the bytes left`);
  }
  const signatureHeader = r.bytesOf(headerSize);
  const body = listSize - fixed - headerSize;
  if (signatureSize < 16 || body % signatureSize !== 0) {
    throw r.error(`SignatureSize ${signatureSize} does not divide the ${body} byte(s) of signatures`);
  }
  if (body / signatureSize > maxSignatures) {
    throw r.error(`more signatures than the ${maxSignatures} left of the bound`);
  }
  const signatures: EfiSignature[] = [];
  for (let i = 0; i < body / signatureSize; i++) {
    const signatureOwner = readEfiGuid(r);
    signatures.push({ signatureOwner, signatureData: r.bytesOf(signatureSize - 16) });
  }
  return { signatureType, signatureHeader, signatures };
}

/** UTF-16LE to a string; unpaired surrogates become U+FFFD rather than failing. */
export function decodeUtf16(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength & ~1).toString('utf16le');
}
