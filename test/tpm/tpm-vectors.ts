import { readFileSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';

/**
 * Loaders for the TPM vectors under ../shared/vectors (see its INDEX.md for provenance and the
 * expected outcome of each).
 */

export function vectorBytes(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(...parts)));
}

export function vectorText(...parts: string[]): string {
  return readFileSync(vectorPath(...parts), 'utf8');
}

export const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** keylime tpm_util_test.py::test_checkquote inputs. */
export function keylimeCheckquote(): {
  akPem: string; attest: Uint8Array; signature: Uint8Array; pcrBlob: Uint8Array; nonce: Uint8Array; wire: string;
} {
  const dir = ['keylime', 'tpm', 'checkquote'];
  return {
    akPem: vectorText(...dir, 'aik_pub.pem'),
    attest: vectorBytes(...dir, 'quote.tpms_attest.bin'),
    signature: vectorBytes(...dir, 'quote.tpmt_signature.bin'),
    pcrBlob: vectorBytes(...dir, 'quote.pcrs.tpm2tools.bin'),
    nonce: vectorBytes(...dir, 'nonce.txt'),
    wire: vectorText(...dir, 'quote_wire_format.txt'),
  };
}

/** keylime test-data/files: the legacy tpm2-tools quote with its AK TPM2B_PUBLIC. */
export function keylimeLegacy(name: string): Uint8Array {
  return vectorBytes('keylime', 'tpm', 'legacy_test_data_files', name);
}

export const GCE_ATTESTATIONS = ['gce-cos-85-nonce9009', 'gce-cos-85-no-nonce'] as const;
export const GCE_BANKS = ['sha1', 'sha256', 'sha384'] as const;

/** One bank's quote from a go-tpm-tools GCE attestation, with the PCR values it carries. */
export function gceQuote(attestation: string, bank: string): {
  akTpmtPublic: Uint8Array; attest: Uint8Array; signature: Uint8Array; nonce: Uint8Array; pcrs: Map<number, Uint8Array>;
} {
  const dir = ['go-tpm-tools', 'attestations', `${attestation}.extracted`];
  const pcrJson = JSON.parse(vectorText(...dir, `pcrs_${bank}.json`)) as Record<string, string>;
  return {
    akTpmtPublic: vectorBytes(...dir, 'ak.tpmt_public.bin'),
    attest: vectorBytes(...dir, `quote_${bank}.tpms_attest.bin`),
    signature: vectorBytes(...dir, `quote_${bank}.tpmt_signature.bin`),
    nonce: hex(vectorText(...dir, 'nonce.hex').trim()),
    pcrs: new Map(Object.entries(pcrJson).map(([k, v]) => [Number(k), hex(v)])),
  };
}

interface WindowsDump {
  AK: { Public: string; CreateAttestation: string; CreateSignature: string };
  Quote: { Nonce: string | null; Quote: string; Signature: string };
  Log: { PCRs: Array<{ Index: number; Digest: string }> };
}

/** go-attestation windows_gcp_shielded_vm.json: SHA1 quote over PCR 0–23 with an empty nonce. */
export function windowsQuote(): {
  akTpmtPublic: Uint8Array; attest: Uint8Array; signature: Uint8Array; pcrs: Map<number, Uint8Array>;
  createAttestation: Uint8Array; createSignature: Uint8Array;
} {
  const dump = JSON.parse(vectorText('go-attestation', 'windows_gcp_shielded_vm.json')) as WindowsDump;
  const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
  return {
    akTpmtPublic: b64(dump.AK.Public),
    attest: b64(dump.Quote.Quote),
    signature: b64(dump.Quote.Signature),
    pcrs: new Map(dump.Log.PCRs.map((p) => [p.Index, b64(p.Digest)])),
    createAttestation: b64(dump.AK.CreateAttestation),
    createSignature: b64(dump.AK.CreateSignature),
  };
}

/** Every structure vector by kind, for round-trip and malformed-input tests. */
export function structureVectors(): {
  tpm2bPublic: Record<string, Uint8Array>; tpmtPublic: Record<string, Uint8Array>;
  attest: Record<string, Uint8Array>; signature: Record<string, Uint8Array>; pcrBlob: Record<string, Uint8Array>;
} {
  const objects = (name: string): Uint8Array => vectorBytes('keylime', 'tpm', 'tpm2_objects', name);
  const cq = keylimeCheckquote();
  const gce = gceQuote('gce-cos-85-nonce9009', 'sha1');
  const win = windowsQuote();
  const quoteTxt = vectorText('rust-keylime', 'test-quote.txt').trim().slice(1).split(':');
  const rust = quoteTxt.map((p) => new Uint8Array(Buffer.from(p, 'base64')));
  return {
    tpm2bPublic: {
      'keylime ak.tpm2b_public.bin': objects('ak.tpm2b_public.bin'),
      'keylime ecc_signing_key_no_sym': objects('ecc_signing_key_no_sym.tpm2b_public.bin'),
      'keylime infineon_ecc_ek': objects('infineon_ecc_ek.tpm2b_public.bin'),
      'keylime infineon_rsa_ek': objects('infineon_rsa_ek.tpm2b_public.bin'),
      'keylime rsa_null_scheme': objects('rsa_null_scheme.tpm2b_public.bin'),
      'keylime rsa_signing_key_no_sym': objects('rsa_signing_key_no_sym.tpm2b_public.bin'),
      'keylime legacy ak.pub': keylimeLegacy('ak.pub'),
      'keylime legacy ek.pub': keylimeLegacy('ek.pub'),
    },
    tpmtPublic: { 'go-tpm-tools GCE AK': gce.akTpmtPublic, 'go-attestation Windows AK': win.akTpmtPublic },
    attest: {
      'keylime checkquote': cq.attest,
      'keylime legacy quote.out': keylimeLegacy('quote.out'),
      'go-tpm-tools GCE sha1 quote': gce.attest,
      'go-attestation Windows quote': win.attest,
      'go-attestation Windows AK creation': win.createAttestation,
      'rust-keylime test-quote': rust[0] as Uint8Array,
    },
    signature: {
      'keylime checkquote': cq.signature,
      'keylime legacy quotesig.out': keylimeLegacy('quotesig.out'),
      'go-tpm-tools GCE sha1 quote': gce.signature,
      'go-attestation Windows quote': win.signature,
      'rust-keylime test-quote': rust[1] as Uint8Array,
    },
    pcrBlob: {
      'keylime checkquote': cq.pcrBlob,
      'keylime legacy quotepcr.out': keylimeLegacy('quotepcr.out'),
      'rust-keylime test-quote': rust[2] as Uint8Array,
    },
  };
}
