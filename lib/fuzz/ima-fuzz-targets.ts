import { readPublicKeyBlob, UnsupportedImaKey } from '../ima/ima-keyring.js';
import { parseImaAsciiList } from '../ima/ascii-list-parser.js';
import { parseImaBinaryList } from '../ima/binary-list-parser.js';
import { encodeImaBinaryList } from '../ima/internal/binary-list-writer.js';
import { parseImaSignature } from '../ima/internal/ima-signature.js';
import { verifyImaList } from '../ima/verify-ima-list.js';
import { corrupted } from './corrupt-certificate.js';
import { asText, vectorFiles, vectorFolder } from './fuzz-seeds.js';
import { bytesOf, textOf, type FuzzTarget } from './fuzz-target-kit.js';

const IMA_TOKENS = ['10', ' ', 'ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-modsig', 'sha1:', 'sha256:', 'sha512:', ':', '00', 'ff', 'zz', '/usr/bin/x', '\n', '\r\n', '\t', 'boot_aggregate'];

/** Fuzz targets of the IMA measurement lists (ASCII and binary) and the keys and signatures in them. */
export const IMA_FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'ima-ascii',
    description: 'IMA ASCII measurement lists: parse and replay',
    kind: 'text',
    tokens: IMA_TOKENS,
    seeds: () => [
      ...asText(vectorFolder('keylime/ima/verification', /\.ascii$/)),
      ...asText(vectorFolder('keylime/ima/ast', /\.ascii$/)),
      ...asText(vectorFiles('rust-keylime/invalid_ima_log.txt')),
      `10 ${'0'.repeat(40)} ima-ng sha256:${'0'.repeat(64)} /${'a'.repeat(28)}!`,
    ],
    run(input) {
      const text = textOf(input);
      parseImaAsciiList(text);
      verifyImaList({ listText: text });
    },
  },
  {
    name: 'ima-binary',
    description: 'IMA binary measurement lists',
    kind: 'bytes',
    seeds() {
      const texts = asText(vectorFolder('keylime/ima/verification', /\.ascii$/));
      return texts.flatMap((text) => {
        try {
          return [encodeImaBinaryList(parseImaAsciiList(text))];
        } catch {
          return [];
        }
      });
    },
    run: (input) => void parseImaBinaryList(bytesOf(input)),
  },
  {
    name: 'ima-key',
    description: 'keys and certificates of ima-buf keyring lines, IMA signatures',
    kind: 'bytes',
    seeds: () => [...vectorFolder('keylime/ima/verification/ima_keys', /./), ...corrupted(vectorFolder('keylime/ek_certs', /\.der$/))],
    run(input) {
      const data = Buffer.from(bytesOf(input));
      try {
        readPublicKeyBlob(data);
      } catch (error) {
        // The one caller (entry-validator.ts) turns UnsupportedImaKey into an invalid-key failure event.
        if (!(error instanceof UnsupportedImaKey)) {
          throw error;
        }
      }
      parseImaSignature(data);
    },
  },
];
