import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { parseImaAsciiLine, parseImaAsciiList, splitImaAsciiLines } from '../../lib/ima/ascii-list-parser.js';
import { formatImaAsciiLine } from '../../lib/ima/internal/ima-entry.js';
import { rustKeylimeLog, vectorText } from './ima-vectors.js';

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex');

function expectParseError(run: () => unknown, message: RegExp): void {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(ImaParseError);
    expect((error as ImaParseError).code).to.equal('ERR_IMA_PARSE');
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail('expected an ImaParseError');
}

describe('IMA ASCII list parser', () => {
  describe('keylime ima/ast valid entries (test_ima_ast.py::test_valid_entry_construction)', () => {
    const labels = JSON.parse(vectorText('keylime', 'ima', 'ast', 'valid_entries_labels.json')) as Array<{
      line: number;
      name: string;
      expected_mode_class: string;
    }>;
    const lines = splitImaAsciiLines(vectorText('keylime', 'ima', 'ast', 'valid_entries.ascii'));
    const templateOf: Record<string, string[]> = {
      'ast.ImaSig': ['ima-sig'],
      'ast.ImaBuf': ['ima-buf'],
      'ast.Ima': ['ima'],
      'ast.ImaNg': ['ima-ng'],
    };

    for (const label of labels) {
      it(`${label.name}: PCR 10, ${label.expected_mode_class}, SHA1(template data) == template hash`, () => {
        const entry = parseImaAsciiLine(lines[label.line - 1] ?? '', label.line);
        expect(entry.pcr).to.equal(10);
        expect(templateOf[label.expected_mode_class]).to.include(entry.templateName);
        expect(sha1(entry.templateData)).to.equal(entry.templateHash.toString('hex'));
        expect(entry.line).to.equal(label.line);
      });
    }

    it('decodes the fields of each template', () => {
      const [rsa, ec, unsigned, buf, legacy, ng] = lines.map((line, i) => parseImaAsciiLine(line, i + 1));
      expect(rsa?.digest).to.deep.equal({
        algorithm: 'sha256',
        hex: 'd33d5d13792292e202dbf69a6f1b07bc8a02f01424db8489ba7bb7d43c0290ef',
      });
      expect(rsa?.path).to.equal('/usr/bin/dd');
      expect(rsa?.signature.subarray(0, 7).toString('hex')).to.equal('030204f3452d23');
      expect(ec?.signature.length).to.equal(9 + 0x48);
      expect(unsigned?.signature.length).to.equal(0);
      expect(unsigned?.path).to.equal('/lib/modules/5.4.48-openpower1/kernel/drivers/usb/common/usb-common.ko');
      expect(buf?.path).to.equal('device_resume');
      expect(buf?.buffer.toString('latin1')).to.match(/^name=TEST;uuid=CRYPT-VERITY-/);
      // Legacy 'ima': 20-byte digest, then the name NUL-padded to 256 bytes.
      expect(legacy?.templateData.length).to.equal(20 + 256);
      expect(legacy?.digest).to.deep.equal({ algorithm: 'sha1', hex: '6f66d1d8e2fffcc12dfcb78c04b81fe5b8bbae4e' });
      expect(ng?.templateData.length).to.equal(4 + 'sha1'.length + 2 + 20 + 4 + '/usr/lib/systemd/systemd'.length + 1);
    });

    it('formats every entry back to the identical line', () => {
      lines.forEach((line, i) => expect(formatImaAsciiLine(parseImaAsciiLine(line, i + 1))).to.equal(line));
    });
  });

  describe('keylime ima/ast invalid entries (test_ima_ast.py::test_invalid_entries)', () => {
    const lines = splitImaAsciiLines(vectorText('keylime', 'ima', 'ast', 'invalid_entries.ascii'));
    const expected: Record<number, RegExp> = {
      1: /line 1: unknown template "not-ima"/,
      2: /line 2: template hash is not hex: "I936eb/,
      3: /line 3: digest "sha1:Ic026ae.*" is not hex/,
      4: /line 4: PCR index "this" is not a decimal number/,
    };
    lines.forEach((line, i) => {
      it(`refuses line ${i + 1} with ImaParseError`, () => {
        expectParseError(() => parseImaAsciiLine(line, i + 1), expected[i + 1] ?? /never/);
      });
    });
  });

  describe('rust-keylime vectors', () => {
    it('parses the 826-entry list, all ima-ng with SHA1(template data) == template hash', () => {
      const entries = parseImaAsciiList(rustKeylimeLog());
      expect(entries).to.have.length(826);
      expect(entries.every((e) => e.templateName === 'ima-ng')).to.equal(true);
      expect(entries.every((e) => sha1(e.templateData) === e.templateHash.toString('hex'))).to.equal(true);
      expect(entries[0]?.path).to.equal('boot_aggregate');
      expect(entries[825]?.line).to.equal(826);
    });

    it('ima_log.txt parses and re-serialises to the identical text (ima_log.rs::test_get_all_entries_as_string)', () => {
      const text = vectorText('rust-keylime', 'ima_log.txt');
      const entries = parseImaAsciiList(text);
      expect(entries).to.have.length(1);
      expect(entries.map((e) => `${formatImaAsciiLine(e)}\n`).join('')).to.equal(text);
    });

    it('invalid_ima_log.txt and empty_ima_log.txt are refused (ima_log.rs::test_invalid_log, ::test_ima_log_empty)', () => {
      expectParseError(() => parseImaAsciiList(vectorText('rust-keylime', 'invalid_ima_log.txt')), /line 1: expected/);
      expectParseError(() => parseImaAsciiList(vectorText('rust-keylime', 'empty_ima_log.txt')), /the measurement list is empty/);
    });
  });

  describe('malformed lines', () => {
    const good = '10 7936eb315fb4e74b99e7d461bc5c96049e1ee092 ima-ng sha1:bc026ae66d81713e4e852465e980784dc96651f8 /usr/lib/systemd/systemd';
    const cases: Array<[string, string, RegExp]> = [
      ['non-decimal PCR', good.replace(/^10/, '1a'), /PCR index "1a" is not a decimal number/],
      ['odd template hash', good.replace('7936eb', '7936e'), /template hash is not hex/],
      ['digest without algorithm', good.replace('sha1:', ''), /is not <algorithm>:<hex>/],
      ['sha1 digest of the wrong size', good.replace('sha1:bc02', 'sha1:bc'), /sha1 digest must be 20 bytes, got 19/],
      ['extra field', `${good} extra`, /template ima-ng has 2 field\(s\), got 3/],
      ['ima-sig with two fields', good.replace('ima-ng', 'ima-sig'), /template ima-sig has 3 field\(s\), got 2/],
      ['ima-sig with a non-hex signature', `${good.replace('ima-ng', 'ima-sig')} 03zz`, /signature is not hex/],
      ['ima-buf with an odd buffer', `${good.replace('ima-ng', 'ima-buf')} abc`, /odd number of digits/],
      ['legacy ima name over 255 bytes', `10 ${'0'.repeat(40)} ima ${'1'.repeat(40)} /${'x'.repeat(255)}`, /at most 255 bytes, got 256/],
      ['legacy ima with a d-ng digest', `10 ${'0'.repeat(40)} ima sha1:${'1'.repeat(40)} /x`, /needs a 20-byte sha1/],
      ['empty line', '', /line 7: expected/],
    ];
    for (const [name, line, message] of cases) {
      it(`refuses ${name}`, () => expectParseError(() => parseImaAsciiLine(line, 7), message));
    }

    it('every proper prefix of a valid line either throws ImaParseError or parses to other template data', () => {
      for (let n = 0; n < good.length; n++) {
        const prefix = good.slice(0, n);
        try {
          const entry = parseImaAsciiLine(prefix, 1);
          expect(sha1(entry.templateData)).to.not.equal(entry.templateHash.toString('hex'));
        } catch (error) {
          expect(error).to.be.instanceOf(ImaParseError);
        }
      }
    });

    it('refuses an empty line inside a list, naming it', () => {
      expectParseError(() => parseImaAsciiList(`${good}\n\n${good}\n`), /line 2: empty line/);
    });
  });

  it('parses an ima-modsig entry with and without an appended signature', () => {
    const withModsig = parseImaAsciiLine(
      `10 ${'ab'.repeat(20)} ima-modsig sha256:${'11'.repeat(32)} /lib/modules/x.ko 030204aabbccdd0000 sha256:${'22'.repeat(32)} 3082`,
      1,
    );
    expect(withModsig.modsigDigest).to.deep.equal({ algorithm: 'sha256', hex: '22'.repeat(32) });
    expect(withModsig.modsig.toString('hex')).to.equal('3082');
    expect(withModsig.signature.toString('hex')).to.equal('030204aabbccdd0000');
    const without = parseImaAsciiLine(`10 ${'ab'.repeat(20)} ima-modsig sha256:${'11'.repeat(32)} /usr/bin/x   `, 2);
    expect(without.modsigDigest).to.equal(undefined);
    expect(without.templateData.subarray(-12).toString('hex')).to.equal('000000000000000000000000');
    expect(formatImaAsciiLine(without)).to.equal(`10 ${'ab'.repeat(20)} ima-modsig sha256:${'11'.repeat(32)} /usr/bin/x   `);
  });
});
