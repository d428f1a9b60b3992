/** `der` as one PEM CERTIFICATE block, 64 base64 characters a line. */
export function certificatePem(der: Uint8Array): string {
  return `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

/** A CERTIFICATE block that splits as DER (SEQUENCE tag first) but is no certificate. */
export const UNREADABLE_CERTIFICATE_BLOCK = certificatePem(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]));
