import { expect } from 'chai';
import fc from 'fast-check';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { parseImaAsciiList } from '../../lib/ima/ascii-list-parser.js';
import { parseImaBinaryList } from '../../lib/ima/binary-list-parser.js';
import { encodeImaBinaryList } from '../../lib/ima/internal/binary-list-writer.js';
import { formatImaAsciiLine } from '../../lib/ima/internal/ima-entry.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { RUST_KEYLIME_PCR10_SHA1, rustKeylimeLog, vectorText } from './ima-vectors.js';

function expectParseError(run: () => unknown, message: RegExp): void {
  expect(run).to.throw(ImaParseError, message);
}

describe('IMA binary list parser', () => {
  const astEntries = parseImaAsciiList(vectorText('keylime', 'ima', 'ast', 'valid_entries.ascii'));
  const astBinary = encodeImaBinaryList(astEntries);

  it('round-trips every template of the keylime ast vectors, legacy ima included', () => {
    const parsed = parseImaBinaryList(astBinary);
    expect(parsed.map(formatImaAsciiLine)).to.deep.equal(astEntries.map(formatImaAsciiLine));
    parsed.forEach((entry, i) => expect(entry.templateData.equals(astEntries[i]!.templateData)).to.equal(true));
    expect(Buffer.from(encodeImaBinaryList(parsed)).equals(Buffer.from(astBinary))).to.equal(true);
  });

  it('lays out an ima-ng entry as the kernel does: pcr, sha1, name length, name, data length, data', () => {
    const [entry] = parseImaAsciiList(`${rustKeylimeLog().split('\n')[1]}\n`);
    const bytes = Buffer.from(encodeImaBinaryList([entry!]));
    expect(bytes.readUInt32LE(0)).to.equal(10);
    expect(bytes.subarray(4, 24).toString('hex')).to.equal('c156ebdcbfcd28fe1060ef4cdec0aab04d3a9b63');
    expect(bytes.readUInt32LE(24)).to.equal(6);
    expect(bytes.subarray(28, 34).toString('latin1')).to.equal('ima-ng');
    expect(bytes.readUInt32LE(34)).to.equal(bytes.length - 38);
  });

  it('writes the legacy ima template without a data length and with an unpadded name', () => {
    const legacy = astEntries.find((e) => e.templateName === 'ima')!;
    const bytes = Buffer.from(encodeImaBinaryList([legacy]));
    // pcr 4 + hash 20 + name length 4 + "ima" 3 + digest 20 + path length 4 + "/usr/bin/kmod" 13
    expect(bytes.length).to.equal(4 + 20 + 4 + 3 + 20 + 4 + 13);
    expect(bytes.readUInt32LE(51)).to.equal(13);
  });

  it('replays the 826-entry list to the same PCR 10 as the ASCII form', () => {
    const entries = parseImaBinaryList(encodeImaBinaryList(parseImaAsciiList(rustKeylimeLog())));
    const result = verifyImaList({ entries, quotedPcr10: { bank: 'sha1', value: RUST_KEYLIME_PCR10_SHA1 } });
    expect(result.valid).to.equal(true);
    expect(result.entriesChecked).to.equal(826);
  });

  it('throws ImaParseError for every proper prefix that does not end on an entry boundary', () => {
    const boundaries = new Set<number>();
    let end = 0;
    for (const entry of astEntries) {
      end += encodeImaBinaryList([entry]).length;
      boundaries.add(end);
    }
    for (let n = 0; n < astBinary.length; n++) {
      const prefix = astBinary.subarray(0, n);
      if (boundaries.has(n)) {
        expect(parseImaBinaryList(prefix)).to.have.length([...boundaries].filter((b) => b <= n).length);
      } else {
        expect(() => parseImaBinaryList(prefix), `prefix of ${n} bytes`).to.throw(ImaParseError);
      }
    }
  });

  describe('hostile lengths and contents', () => {
    const one = Buffer.from(encodeImaBinaryList([astEntries[5]!]));

    it('refuses a template name length of 0xffffffff without allocating', () => {
      const bytes = Buffer.from(one);
      bytes.writeUInt32LE(0xffffffff, 24);
      expectParseError(() => parseImaBinaryList(bytes), /entry 1: at offset 28: template name length 4294967295 is not 1\.\.32/);
    });

    it('refuses a template data length past the end', () => {
      const bytes = Buffer.from(one);
      bytes.writeUInt32LE(0x7fffffff, 34);
      expectParseError(() => parseImaBinaryList(bytes), /entry 1: at offset 38: need 2147483647 byte\(s\), \d+ left/);
    });

    it('refuses a field length past the end of the template data', () => {
      const bytes = Buffer.from(one);
      bytes.writeUInt32LE(0xffff, 38);
      expectParseError(() => parseImaBinaryList(bytes), /template data: ima-ng\.d-ng\.length: at offset 4: need 65535 byte/);
    });

    it('refuses template data with trailing bytes (a name that does not match the layout)', () => {
      const sig = astEntries[0]!;
      const relabelled = { ...sig, templateName: 'ima-ng' as const };
      expectParseError(() => parseImaBinaryList(encodeImaBinaryList([relabelled])), /template data: .*trailing byte/);
    });

    it('refuses an unknown template and an n-ng field without NUL', () => {
      const bytes = Buffer.from(one);
      bytes.write('imx-ng', 28, 'latin1');
      expectParseError(() => parseImaBinaryList(bytes), /unknown template "imx-ng"/);
      const noNul = Buffer.from(one);
      noNul[noNul.length - 1] = 0x41;
      expectParseError(() => parseImaBinaryList(noNul), /name field is not NUL-terminated/);
    });

    it('refuses an empty list', () => {
      expectParseError(() => parseImaBinaryList(new Uint8Array(0)), /the measurement list is empty/);
    });

    it('never throws anything but ImaParseError on random bytes or mutated lists', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          try {
            parseImaBinaryList(bytes);
          } catch (error) {
            expect(error).to.be.instanceOf(ImaParseError);
          }
        }),
        { numRuns: 3000 },
      );
      fc.assert(
        fc.property(fc.nat(astBinary.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
          const bytes = Buffer.from(astBinary);
          bytes[at] = value;
          try {
            parseImaBinaryList(bytes);
          } catch (error) {
            expect(error).to.be.instanceOf(ImaParseError);
          }
        }),
        { numRuns: 3000 },
      );
    });
  });
});
