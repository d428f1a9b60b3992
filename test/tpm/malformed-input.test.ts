import { expect } from 'chai';
import fc from 'fast-check';
import { TpmParseError } from '../../lib/bytes/parse-errors.js';
import { parseCredentialBlob } from '../../lib/tpm/credential-blob.js';
import { parsePcrBlob } from '../../lib/tpm/pcr-blob.js';
import { parseQuoteString } from '../../lib/tpm/quote-string.js';
import { parseTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import { parsePublicArea, parseTpm2bPublic, parseTpmtPublic } from '../../lib/tpm/tpmt-public.js';
import { parseTpmtSignature } from '../../lib/tpm/tpmt-signature.js';
import { hex, structureVectors, vectorText } from './tpm-vectors.js';

const vectors = structureVectors();
const credentialBlob = hex(
  (JSON.parse(vectorText('keylime', 'tpm', 'makecredential', 'makecredential_vectors.json')) as Record<string, { expected_credential_hex: string }>)
    .test_makecredential_ecc?.expected_credential_hex ?? '',
);

type Parser = (bytes: Uint8Array) => unknown;
const PARSERS: ReadonlyArray<readonly [string, Parser, Record<string, Uint8Array>]> = [
  ['parseTpm2bPublic', parseTpm2bPublic, vectors.tpm2bPublic],
  ['parseTpmtPublic', parseTpmtPublic, vectors.tpmtPublic],
  ['parseTpmsAttest', parseTpmsAttest, vectors.attest],
  ['parseTpmtSignature', parseTpmtSignature, vectors.signature],
  ['parsePcrBlob', parsePcrBlob, vectors.pcrBlob],
  ['parseCredentialBlob', parseCredentialBlob, { 'keylime ECC makecredential': credentialBlob }],
];

/** Runs `parse` and fails the test on anything but success or a TpmParseError. */
function parsesOrTpmParseError(parse: Parser, bytes: Uint8Array): void {
  try {
    parse(bytes);
  } catch (error) {
    if (!(error instanceof TpmParseError)) {
      throw new Error(`threw ${(error as Error).name}: ${(error as Error).message}`);
    }
    expect(error.code).to.equal('ERR_TPM_PARSE');
  }
}

describe('TPM parsers: malformed input throws TpmParseError only', () => {
  for (const [parserName, parse, inputs] of PARSERS) {
    for (const [name, bytes] of Object.entries(inputs)) {
      it(`${parserName}: every proper prefix of ${name} (${bytes.length} bytes) throws TpmParseError`, () => {
        expect(() => parse(bytes)).not.to.throw();
        for (let n = 0; n < bytes.length; n += 1) {
          expect(() => parse(bytes.subarray(0, n)), `prefix of ${n} bytes`).to.throw(TpmParseError);
        }
      });
      it(`${parserName}: ${name} with a trailing byte throws TpmParseError`, () => {
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        expect(() => parse(longer)).to.throw(TpmParseError, /trailing byte|left|exceeds|size/);
      });
    }
  }

  it('parseTpmsAttest: wrong magic', () => {
    const bytes = (vectors.attest['keylime checkquote'] as Uint8Array).slice();
    bytes[0] = 0xfe;
    expect(() => parseTpmsAttest(bytes)).to.throw(TpmParseError, /TPMS_ATTEST: at offset 4: magic 0xfe544347 is not TPM_GENERATED_VALUE/);
  });

  it('parseTpmsAttest: unknown attestation type', () => {
    const bytes = (vectors.attest['keylime checkquote'] as Uint8Array).slice();
    bytes[5] = 0x1f;
    expect(() => parseTpmsAttest(bytes)).to.throw(TpmParseError, /unknown attestation type 0x801f/);
  });

  it('parseTpmsAttest: oversized extraData size', () => {
    const bytes = (vectors.attest['keylime checkquote'] as Uint8Array).slice();
    // magic(4) type(2) qualifiedSigner(2+34) → extraData size at offset 42
    bytes[42] = 0xff;
    expect(() => parseTpmsAttest(bytes)).to.throw(TpmParseError, /TPMS_ATTEST\.extraData: at offset 44: size 65300 exceeds the maximum 66/);
  });

  it('parseTpmsAttest: PCR selection count above 16', () => {
    const bytes = (vectors.attest['keylime checkquote'] as Uint8Array).slice();
    // … clockInfo(17) firmwareVersion(8) → TPML_PCR_SELECTION.count at 44 + 20 + 25 = 89
    bytes[89] = 0x01;
    expect(() => parseTpmsAttest(bytes)).to.throw(TpmParseError, /TPML_PCR_SELECTION: at offset 93: count 16777217 exceeds 16/);
  });

  it('parseTpm2bPublic: size field larger than the data, and an unknown object type', () => {
    const bytes = (vectors.tpm2bPublic['keylime ak.tpm2b_public.bin'] as Uint8Array).slice();
    bytes[0] = 0x7f;
    expect(() => parseTpm2bPublic(bytes)).to.throw(TpmParseError, /TPM2B_PUBLIC: at offset 2: size 32536 exceeds the 280 byte\(s\) left/);
    const typed = (vectors.tpm2bPublic['keylime ak.tpm2b_public.bin'] as Uint8Array).slice();
    typed[3] = 0x99;
    expect(() => parseTpm2bPublic(typed)).to.throw(TpmParseError, /unknown object type 0x0099/);
  });

  it('parseTpmtSignature: HMAC or NULL signatures are not accepted', () => {
    expect(() => parseTpmtSignature(hex('0005000b' + '00'.repeat(32)))).to.throw(TpmParseError, /unsupported signature algorithm hmac/);
    expect(() => parseTpmtSignature(hex('0010'))).to.throw(TpmParseError, /unsupported signature algorithm null/);
  });

  it('parsePcrBlob: digest list count that disagrees with its sizes', () => {
    const bytes = (vectors.pcrBlob['keylime checkquote'] as Uint8Array).slice();
    bytes[136] = 2; // TPML_DIGEST.count = 2, but slot 1 is empty
    expect(() => parsePcrBlob(bytes)).to.throw(TpmParseError, /digests\[1\] has size 0 with count 2/);
  });

  it('parseCredentialBlob: wrong magic and version', () => {
    const bytes = credentialBlob.slice();
    bytes[0] = 0;
    expect(() => parseCredentialBlob(bytes)).to.throw(TpmParseError, /magic 0xdcc0de is not 0xbadcc0de/);
    const versioned = credentialBlob.slice();
    versioned[7] = 2;
    expect(() => parseCredentialBlob(versioned)).to.throw(TpmParseError, /version 2 is not 1/);
  });

  it('parseQuoteString: missing r, wrong part count, bad base64', () => {
    expect(() => parseQuoteString('AAAA:AAAA:AAAA')).to.throw(TpmParseError, /must start with "r"/);
    expect(() => parseQuoteString('rAAAA:AAAA')).to.throw(TpmParseError, /expected 3 ":"-separated parts, got 2/);
    expect(() => parseQuoteString('rAAAA:AA*A:AAAA')).to.throw(TpmParseError, /quote string\.TPMT_SIGNATURE: at offset 6: not canonical base64/);
  });

  describe('parseQuoteString: a part is taken exactly when it is non-empty padded standard base64', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    /** The rule written out: groups of four alphabet characters, the last of which may end in `=` or `==`. */
    const isPaddedBase64 = (part: string): boolean => {
      if (part.length === 0 || part.length % 4 !== 0) return false;
      const padding = part.endsWith('==') ? 2 : part.endsWith('=') ? 1 : 0;
      return [...part.slice(0, part.length - padding)].every((char) => ALPHABET.includes(char));
    };
    const accepts = (part: string): boolean => {
      try {
        parseQuoteString(`rAAAA:${part}:AAAA`);
        return true;
      } catch (error) {
        expect(error).to.be.instanceOf(TpmParseError);
        expect((error as Error).message).to.match(/TPMT_SIGNATURE: at offset 6: not canonical base64/);
        return false;
      }
    };

    it('refuses what a lenient decoder would read: URL alphabet, whitespace, skipped characters, bad padding', () => {
      const refused = ['', 'A', 'AA', 'AAA', 'AAAAA', 'AA-A', 'AA_A', 'AA A', 'AAA\n', 'AA.A', 'AA\0A', 'AAé=', 'AAA==', '=AAA', 'A===', '====', 'AA=A', 'AAAA=', 'AA==AAAA', ' AAAA', 'AAAA '];
      for (const part of refused) {
        expect(accepts(part), JSON.stringify(part)).to.equal(false);
      }
    });

    it('takes canonical parts and, as before, a last group whose unused bits are set (as Python does)', () => {
      for (const part of ['AAAA', 'QQ==', 'QUE=', 'QUFB', '+/+/', 'QR==', 'QUF=', 'QUFBQR==']) {
        expect(accepts(part), part).to.equal(true);
      }
      expect(parseQuoteString('rAAAA:QR==:AAAA').signature).to.deep.equal(new Uint8Array([0x41]));
    });

    it('agrees with the rule on 5000 random parts near base64', () => {
      const char = fc.constantFrom(...'AZaz09+/=-_ .\n\0é');
      fc.assert(fc.property(fc.stringOf(char, { maxLength: 13 }), (part) => {
        expect(accepts(part), JSON.stringify(part)).to.equal(isPaddedBase64(part));
      }), { numRuns: 5000 });
    });

    it('agrees with the rule on every part of 5000 random byte strings, encoded', () => {
      fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), (bytes) => {
        const part = Buffer.from(bytes).toString('base64');
        expect(accepts(part)).to.equal(true);
        expect(parseQuoteString(`rAAAA:${part}:AAAA`).signature).to.deep.equal(new Uint8Array(bytes));
      }), { numRuns: 5000 });
    });
  });

  describe('property: random bytes never crash a parser', () => {
    for (const [parserName, parse] of [...PARSERS, ['parsePublicArea', parsePublicArea] as const]) {
      it(`${parserName}: 3000 random inputs`, () => {
        fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (bytes) => parsesOrTpmParseError(parse, bytes)), { numRuns: 3000 });
      });
    }

    for (const [parserName, parse, inputs] of PARSERS) {
      it(`${parserName}: 2000 single-byte mutations of the vectors`, () => {
        const seeds = Object.values(inputs);
        const mutation = fc.record({
          seed: fc.integer({ min: 0, max: seeds.length - 1 }),
          at: fc.nat(),
          value: fc.integer({ min: 0, max: 255 }),
        });
        fc.assert(fc.property(mutation, ({ seed, at, value }) => {
          const bytes = (seeds[seed] as Uint8Array).slice();
          bytes[at % bytes.length] = value;
          parsesOrTpmParseError(parse, bytes);
        }), { numRuns: 2000 });
      });
    }

    it('parseQuoteString: 3000 random strings', () => {
      fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseQuoteString(text);
        } catch (error) {
          expect(error).to.be.instanceOf(TpmParseError);
        }
      }), { numRuns: 3000 });
    });
  });
});
