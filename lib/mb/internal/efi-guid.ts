import type { LittleEndianReader } from '../../bytes/byte-reader.js';

/**
 * EFI_GUID (UEFI 2.10 Appendix A): `Data1 u32 | Data2 u16 | Data3 u16 | Data4[8]`, the first three
 * little-endian. Rendered in the registry form `8be4df61-93ca-11d2-aa0d-00e098032b8c`, which is what
 * tpm2-tools ≥ 5.2 prints and therefore what Keylime refstates built with it contain.
 */
export function readEfiGuid(r: LittleEndianReader): string {
  const data1 = r.u32();
  const data2 = r.u16();
  const data3 = r.u16();
  const data4 = r.bytesOf(8);
  return formatEfiGuid(data1, data2, data3, data4);
}

function formatEfiGuid(data1: number, data2: number, data3: number, data4: Uint8Array): string {
  const hex = (value: number, width: number) => value.toString(16).padStart(width, '0');
  const tail = Buffer.from(data4).toString('hex');
  return `${hex(data1, 8)}-${hex(data2, 4)}-${hex(data3, 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`;
}

/** EFI_GLOBAL_VARIABLE: SecureBoot, PK, KEK, Boot####, BootOrder (UEFI 2.10 §3.3). */
export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
/** EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx, dbt (UEFI 2.10 §32.6.1). */
export const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
/** EFI_CERT_X509_GUID (UEFI 2.10 §32.4.1). */
export const EFI_CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
/** SHIM_LOCK_GUID: shim's variables (SbatLevel, MokList…, its `Shim` vendor certificate record). */
export const SHIM_LOCK_GUID = '605dab50-e046-4300-abb6-3dd810dd8b23';
